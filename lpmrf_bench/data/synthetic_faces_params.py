"""The drawn attributes of one synthetic face: what `synthetic_faces_draw` renders, sampled from a seed.

Geometry is in image units (the image side is 1, origin at the image centre, y down) and follows the
FFHQ alignment that the benchmark crops use: the five landmarks of the 512 template of facexlib
(xinntao/facexlib, utils/face_restoration_helper.py) put the eyes at (0.377, 0.469) and (0.623, 0.469),
the nose tip at (0.501, 0.613) and the mouth corners at y 0.725. Colours are display RGB in [0, 1].
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EYE_X = 0.123  # half the inter-ocular distance
EYE_Y = -0.031
NOSE_Y = 0.113
MOUTH_Y = 0.225

# Skin albedo from very light to very dark (sampled along this curve, then shifted warm/cool).
SKIN_ANCHORS = np.array([
    (0.96, 0.84, 0.77), (0.91, 0.74, 0.63), (0.83, 0.63, 0.48), (0.70, 0.49, 0.35),
    (0.50, 0.33, 0.22), (0.33, 0.21, 0.15), (0.22, 0.14, 0.10),
], dtype=np.float32)

# (name, colour, weight on light skin, weight on dark skin)
HAIR_COLOURS = (
    ("black", (0.06, 0.05, 0.05), 0.15, 0.70),
    ("dark-brown", (0.18, 0.12, 0.08), 0.25, 0.20),
    ("brown", (0.36, 0.24, 0.14), 0.20, 0.04),
    ("auburn", (0.45, 0.20, 0.09), 0.07, 0.01),
    ("blonde", (0.78, 0.62, 0.38), 0.13, 0.01),
    ("platinum", (0.88, 0.82, 0.68), 0.04, 0.00),
    ("gray", (0.55, 0.54, 0.52), 0.08, 0.03),
    ("white", (0.86, 0.85, 0.82), 0.04, 0.01),
    ("dyed", (0.0, 0.0, 0.0), 0.04, 0.00),  # colour drawn at random
)
IRIS_COLOURS = (
    ("dark-brown", (0.18, 0.10, 0.05), 0.30, 0.85),
    ("brown", (0.38, 0.22, 0.10), 0.20, 0.13),
    ("hazel", (0.45, 0.38, 0.18), 0.12, 0.02),
    ("green", (0.30, 0.45, 0.25), 0.10, 0.00),
    ("blue", (0.28, 0.45, 0.68), 0.20, 0.00),
    ("gray", (0.45, 0.50, 0.55), 0.08, 0.00),
)
HAIR_STYLES = ("short", "medium", "long", "curly", "buzz", "bald")
BACKGROUNDS = ("flat", "gradient", "textured", "bokeh")
BEARDS = ("none", "stubble", "beard")


@dataclass(frozen=True)
class FaceParams:
    """Everything random about one face except its pixel-level texture noise."""

    melanin: float
    skin: tuple[float, float, float]
    face_w: float  # half-width at the cheekbones
    face_top: float  # y of the top of the skull ellipse
    chin_y: float
    jaw: float  # 0 = oval, larger = squarer narrowing jaw
    yaw: float  # radians, + turns the face to the image right
    roll: float  # radians
    light: tuple[float, float, float]  # unit vector towards the light (x right, y down, z to camera)
    ambient: float
    light_tint: tuple[float, float, float]
    eye_dy: float
    eye_w: float  # eye half-width
    eye_open: float
    eye_tilt: float
    gaze: tuple[float, float]
    iris: str
    iris_rgb: tuple[float, float, float]
    lash: float  # lash line darkness (0.5 .. 1, makeup above 0.9)
    brow_thick: float
    brow_arch: float
    brow_dy: float
    nose_w: float
    nose_len: float
    mouth_dy: float
    mouth_w: float
    lip_up: float
    lip_lo: float
    smile: float
    mouth_open: float
    lip_rgb: tuple[float, float, float]
    ear_size: float
    blush: float
    folds: float  # nasolabial folds and forehead lines (age)
    freckles: float
    hair: str
    hair_rgb: tuple[float, float, float]
    hair_style: str
    hairline: float  # y of the hairline at the centre
    part: float  # x of the parting
    fringe: float  # 0 none .. 1 bangs down to the brows
    volume: float
    hair_len: float  # y where long hair ends
    strand_freq: float
    beard: str
    moustache: bool
    glasses: bool
    glasses_round: bool
    glasses_rgb: tuple[float, float, float]
    glasses_thick: float
    lens_tint: tuple[float, float, float]
    background: str
    bg_a: tuple[float, float, float]
    bg_b: tuple[float, float, float]
    bg_angle: float
    clothes_rgb: tuple[float, float, float]
    neck_w: float
    skin_texture: float
    grain: float


def _rgb(values) -> tuple[float, float, float]:
    return tuple(min(max(float(v), 0.0), 1.0) for v in values)  # type: ignore[return-value]


def _choose(rng: np.random.Generator, weights) -> int:
    """An index drawn with probability proportional to `weights` (one uniform draw)."""
    cumulative = np.cumsum(weights)
    return min(int(np.searchsorted(cumulative, rng.uniform() * cumulative[-1], side="right")), len(cumulative) - 1)


def _pick(rng: np.random.Generator, table, melanin: float) -> tuple[str, np.ndarray]:
    name, colour, _, _ = table[_choose(rng, [(1 - melanin) * light + melanin * dark for _, _, light, dark in table])]
    return name, np.array(colour, dtype=np.float32)


def _skin(rng: np.random.Generator, melanin: float) -> np.ndarray:
    pos = melanin * (len(SKIN_ANCHORS) - 1)
    i = min(int(pos), len(SKIN_ANCHORS) - 2)
    base = SKIN_ANCHORS[i] + (pos - i) * (SKIN_ANCHORS[i + 1] - SKIN_ANCHORS[i])
    undertone = rng.uniform(-1, 1)  # + olive/yellow, - pink
    return base * (1 + undertone * np.array([-0.03, 0.03, -0.06])) * rng.uniform(0.96, 1.04)


def _random_colour(rng: np.random.Generator, saturation: float, value: tuple[float, float]) -> np.ndarray:
    """Any hue (an HSV hexcone ramp) at `saturation`, its brightness drawn from the `value` range."""
    hue = rng.uniform(0, 1) * 6
    ramp = np.clip(np.abs((hue - np.array([3.0, 2.0, 4.0])) % 6 - 3) - 1, 0, 1)
    return rng.uniform(*value) * (1 - saturation + saturation * ramp)


def sample_face_params(rng: np.random.Generator) -> FaceParams:
    """Draw one face; the draws are made in a fixed order so a seed always gives the same face."""
    melanin = float(rng.beta(1.0, 1.8))
    skin = _skin(rng, melanin)
    hair, hair_rgb = _pick(rng, HAIR_COLOURS, melanin)
    if hair == "dyed":
        hair_rgb = _random_colour(rng, 0.7, (0.35, 0.8))
    hair_rgb = hair_rgb * rng.uniform(0.85, 1.15)
    iris, iris_rgb = _pick(rng, IRIS_COLOURS, melanin)
    masculine = rng.uniform() < 0.5
    style_p = [0.45, 0.15, 0.05, 0.12, 0.15, 0.08] if masculine else [0.12, 0.33, 0.40, 0.12, 0.02, 0.01]
    hair_style = HAIR_STYLES[_choose(rng, style_p)]
    beard = BEARDS[_choose(rng, (0.5, 0.3, 0.2))] if masculine else "none"
    azimuth = rng.uniform(-np.pi, np.pi)
    elevation = rng.uniform(0.25, 1.2)
    light = np.array([np.cos(elevation) * np.sin(azimuth), -np.cos(elevation) * abs(np.cos(azimuth)) * 0.8,
                      np.sin(elevation)])
    lipstick = (not masculine) and rng.uniform() < 0.3
    lip_base = np.array([0.75, 0.25, 0.30]) if lipstick else np.array([0.78, 0.42, 0.40]) * (1.1 - 0.45 * melanin)
    lip_rgb = skin + rng.uniform(0.45, 0.7 if lipstick else 0.55) * (lip_base * rng.uniform(0.85, 1.1) - skin)
    glasses = bool(rng.uniform() < 0.2)
    bg_value = (0.08, 0.78)  # x 1.25 exposure: at most white
    return FaceParams(
        melanin=melanin, skin=_rgb(skin),
        face_w=float(rng.uniform(0.215, 0.255) * (1.03 if masculine else 0.98)),
        face_top=float(rng.uniform(-0.36, -0.33)), chin_y=float(rng.uniform(0.365, 0.41)),
        jaw=float(rng.uniform(0.15, 0.45) if masculine else rng.uniform(0.0, 0.3)),
        yaw=float(rng.uniform(-0.4, 0.4)), roll=float(np.clip(rng.normal(0, 0.05), -0.12, 0.12)),
        light=tuple(float(v) for v in light / np.linalg.norm(light)), ambient=float(rng.uniform(0.5, 0.78)),
        light_tint=_rgb(1 + rng.normal(0, 0.04, 3)),
        eye_dy=float(rng.uniform(-0.008, 0.008)), eye_w=float(rng.uniform(0.048, 0.06)),
        eye_open=float(rng.uniform(0.65, 1.1)), eye_tilt=float(rng.uniform(-0.12, 0.18)),
        gaze=(float(rng.normal(0, 0.12)), float(rng.normal(0, 0.06))), iris=iris,
        iris_rgb=_rgb(iris_rgb * rng.uniform(0.85, 1.15)),
        lash=float(rng.uniform(0.55, 0.85) if masculine else rng.uniform(0.7, 1.0)),
        brow_thick=float(rng.uniform(0.013, 0.022) if masculine else rng.uniform(0.009, 0.016)),
        brow_arch=float(rng.uniform(0.0, 0.6)), brow_dy=float(rng.uniform(-0.01, 0.01)),
        nose_w=float(rng.uniform(0.032, 0.05) * (1 + 0.2 * melanin)), nose_len=float(rng.uniform(-0.012, 0.012)),
        mouth_dy=float(rng.uniform(-0.015, 0.012)), mouth_w=float(rng.uniform(0.085, 0.112)),
        lip_up=float(rng.uniform(0.012, 0.024)), lip_lo=float(rng.uniform(0.018, 0.032)),
        smile=float(rng.uniform(-0.3, 1.0)), mouth_open=float(max(0.0, rng.uniform(-0.02, 0.018))),
        lip_rgb=_rgb(lip_rgb), ear_size=float(rng.uniform(0.85, 1.15)),
        blush=float(rng.uniform(0, 0.6 if not masculine else 0.3)), folds=float(rng.beta(1.2, 3.0)),
        freckles=float(rng.uniform(0, 1) if rng.uniform() < 0.15 * (1 - melanin) + 0.03 else 0.0),
        hair=hair, hair_rgb=_rgb(hair_rgb), hair_style=hair_style,
        hairline=float(rng.uniform(-0.27, -0.2)), part=float(rng.uniform(-0.13, 0.13)),
        fringe=float(rng.uniform(0, 1) if rng.uniform() < 0.35 else 0.0), volume=float(rng.uniform(1.0, 1.25)),
        hair_len=float(rng.uniform(0.15, 0.5)), strand_freq=float(rng.uniform(0.6, 1.4)),
        beard=beard, moustache=bool(beard != "none" and rng.uniform() < 0.6),
        glasses=glasses, glasses_round=bool(rng.uniform() < 0.4),
        glasses_rgb=_rgb(_random_colour(rng, 0.3, (0.02, 0.6))), glasses_thick=float(rng.uniform(0.003, 0.008)),
        lens_tint=_rgb(1 - _random_colour(rng, 0.5, (0.0, 0.25))),
        background=BACKGROUNDS[_choose(rng, (1, 1, 1, 1))],
        bg_a=_rgb(_random_colour(rng, rng.uniform(0, 0.6), bg_value)),
        bg_b=_rgb(_random_colour(rng, rng.uniform(0, 0.6), bg_value)), bg_angle=float(rng.uniform(0, 2 * np.pi)),
        clothes_rgb=_rgb(_random_colour(rng, rng.uniform(0, 0.8), (0.05, 0.9))),
        neck_w=float(rng.uniform(0.1, 0.14) * (1.1 if masculine else 1.0)),
        skin_texture=float(rng.uniform(0.5, 1.5)), grain=float(rng.uniform(0.002, 0.012)),
    )
