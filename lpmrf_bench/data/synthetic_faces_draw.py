"""Rendering one `FaceParams` at any square size: vectorised numpy over a pixel grid, drawn at the target size.

Each layer paints an albedo with a coverage alpha computed from an (approximate) signed distance and
anti-aliased over one pixel, so 64 px and 512 px renders show the same face with no supersampling. Light is
kept apart from colour: layers also write a shading factor (a Lambert term on an ellipsoid head, plus the
shadows of the nose, lips and eye sockets) and a specular term, combined once at the end. Small features
are drawn only inside their bounding box (`Canvas.crop`), which keeps large renders cheap.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from lpmrf_bench.data.synthetic_faces_params import EYE_X, EYE_Y, FaceParams

F32 = np.float32


def sstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def gauss(d2: np.ndarray, r: float) -> np.ndarray:
    """A Gaussian bump of radius r from a squared distance."""
    return np.exp(d2 * F32(-1.0 / (r * r)))


def bump(d: np.ndarray, r: float) -> np.ndarray:
    """A Gaussian bump of radius r from a signed distance (a soft line)."""
    return np.exp(d * d * F32(-1.0 / (r * r)))


def implicit_sd(x: np.ndarray, y: np.ndarray, a: float | np.ndarray, b: float | np.ndarray,
                p: float = 2.0) -> np.ndarray:
    """Approximate signed distance to the superellipse |x/a|^p + |y/b|^p = 1 (first order: (F-1)/|grad F|)."""
    ax, ay = np.abs(x) / a + F32(1e-6), np.abs(y) / b + F32(1e-6)
    if p == 2.0:  # the common case, without float powers
        gx, gy = ax / a, ay / b
        return (ax * ax + ay * ay - F32(1.0)) / (F32(2.0) * np.sqrt(gx * gx + gy * gy))
    gx, gy = ax ** (p - 1) / a, ay ** (p - 1) / b
    return (ax**p + ay**p - F32(1.0)) / (F32(p) * np.sqrt(gx * gx + gy * gy))


@dataclass
class Canvas:
    """A window of the image: albedo [h,w,3], shade [h,w], gloss [h,w] and the face-frame coordinates (x, y)
    of its pixels (image units, origin at the centre, rotated by the head roll). Crops are views."""

    albedo: np.ndarray
    shade: np.ndarray
    gloss: np.ndarray
    x: np.ndarray
    y: np.ndarray
    px: float  # one pixel in image units
    rot: tuple[float, float]  # cos, sin of the roll
    origin: tuple[int, int]  # (row, col) of this window in the full image

    @classmethod
    def new(cls, size: int, roll: float) -> Canvas:
        c = (np.arange(size, dtype=F32) + F32(0.5)) / F32(size) - F32(0.5)
        xi, yi = np.meshgrid(c, c)
        cos, sin = F32(np.cos(roll)), F32(np.sin(roll))
        return cls(np.zeros((size, size, 3), F32), np.ones((size, size), F32), np.zeros((size, size), F32),
                   cos * xi + sin * yi, cos * yi - sin * xi, 1.0 / size, (float(cos), float(sin)), (0, 0))

    def crop(self, cx: float, cy: float, rx: float, ry: float) -> Canvas:
        """The window covering the face-frame box centre (cx, cy), half-sizes (rx, ry), plus a 2 px margin."""
        cos, sin = abs(self.rot[0]), abs(self.rot[1])
        col, row = self.pixel(cx, cy)
        half_w, half_h = (rx * cos + ry * sin) / self.px + 2, (rx * sin + ry * cos) / self.px + 2
        h, w = self.shade.shape
        r0, r1 = min(h, max(0, int(np.floor(row - half_h)))), min(h, max(0, int(np.ceil(row + half_h)) + 1))
        c0, c1 = min(w, max(0, int(np.floor(col - half_w)))), min(w, max(0, int(np.ceil(col + half_w)) + 1))
        rows, cols = slice(r0, r1), slice(c0, c1)
        return Canvas(self.albedo[rows, cols], self.shade[rows, cols], self.gloss[rows, cols], self.x[rows, cols],
                      self.y[rows, cols], self.px, self.rot, (self.origin[0] + r0, self.origin[1] + c0))

    def pixel(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(column, row) in this window of the face-frame points (x, y): pixel centres are integers."""
        cos, sin = self.rot
        size = 1.0 / self.px
        col = (cos * x - sin * y + 0.5) * size - 0.5 - self.origin[1]
        row = (sin * x + cos * y + 0.5) * size - 0.5 - self.origin[0]
        return col, row

    def cover(self, sd: np.ndarray) -> np.ndarray:
        """Coverage of a shape from its signed distance (negative inside), anti-aliased over one pixel."""
        return np.clip(F32(0.5) - sd * F32(1.0 / self.px), 0.0, 1.0)

    def paint(self, alpha: np.ndarray, colour) -> None:
        self.albedo += alpha[..., None] * (np.asarray(colour, F32) - self.albedo)

    def darken(self, amount: np.ndarray) -> None:
        self.shade *= F32(1.0) - amount

    def set_shade(self, alpha: np.ndarray, shade: np.ndarray) -> None:
        self.shade += alpha * (shade - self.shade)

    def noise(self, rng: np.random.Generator, cells: float, aspect: float = 1.0) -> np.ndarray:
        """Smooth N(0,1)-ish noise with about `cells` lobes per image side (x `aspect` across); lobes finer than
        a pixel are drawn as one value per pixel."""
        h, w = self.shade.shape
        gy, gx = min(h, int(cells * h * self.px)) + 2, min(w, int(cells * aspect * w * self.px)) + 2
        field = rng.standard_normal((gy, gx), dtype=F32)
        return cv2.resize(field, (w, h), interpolation=cv2.INTER_CUBIC) if h and w else np.zeros((h, w), F32)


@dataclass(frozen=True)
class Head:
    """Where the yawed head puts things: a lateral offset h on the head surface projects to x(h)."""

    radius: float
    yaw: float
    shift: float  # re-centres the eyes (FFHQ alignment keeps their midpoint at the image centre)

    @classmethod
    def of(cls, p: FaceParams) -> Head:
        theta = np.arcsin(EYE_X / p.face_w)
        return cls(p.face_w, p.yaw, p.face_w * np.sin(p.yaw) * np.cos(theta))

    def x(self, h: float, depth: float = 0.0) -> tuple[float, float]:
        """(projected x, horizontal foreshortening) of the surface point at lateral offset h, raised by depth."""
        theta = np.arcsin(np.clip(h / self.radius, -0.999, 0.999))
        x = (self.radius + depth) * np.sin(theta + self.yaw) - self.shift - depth * np.sin(theta)
        return float(x), float(max(0.2, np.cos(theta + self.yaw) / np.cos(theta)))


def background(c: Canvas, p: FaceParams, rng: np.random.Generator) -> None:
    """Flat, a linear gradient, blotchy multi-scale texture, or out-of-focus discs (bokeh) between two colours."""
    a, b = np.asarray(p.bg_a, F32), np.asarray(p.bg_b, F32)
    if p.background == "flat":
        c.albedo[:] = a
        return
    if p.background == "gradient":
        t = np.clip(F32(0.5) + F32(np.cos(p.bg_angle)) * c.x + F32(np.sin(p.bg_angle)) * c.y, 0.0, 1.0)
    elif p.background == "textured":
        t = sstep(-1.0, 1.0, c.noise(rng, 3) + F32(0.5) * c.noise(rng, 9) + F32(0.25) * c.noise(rng, 24))
    else:  # bokeh: soft discs of light
        t = np.zeros_like(c.x)
        for cx, cy, r, v in zip(rng.uniform(-0.5, 0.5, 14), rng.uniform(-0.5, 0.5, 14), rng.uniform(0.03, 0.1, 14),
                                rng.uniform(0.3, 1.0, 14)):
            dist = np.sqrt((c.x - F32(cx)) ** 2 + (c.y - F32(cy)) ** 2)
            t = np.maximum(t, F32(v) * sstep(F32(r), F32(r * 0.8), dist))
    c.albedo[:] = a + t[..., None] * (b - a)


def lambert(p: FaceParams, nx: np.ndarray, ny: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(shade, specular) of an ellipsoid surface with normal (nx, ny, sqrt(1 - nx^2 - ny^2))."""
    nz = np.sqrt(np.clip(F32(1.0) - nx * nx - ny * ny, 0.02, 1.0))
    lx, ly, lz = (F32(v) for v in p.light)
    dot = nx * lx + ny * ly + nz * lz
    half = np.array([lx, ly, lz + 1.0]) / np.linalg.norm([lx, ly, lz + 1.0])
    spec = np.clip(nx * F32(half[0]) + ny * F32(half[1]) + nz * F32(half[2]), 0.0, 1.0) ** 16
    return F32(p.ambient) + F32(1.0 - p.ambient) * np.clip(dot, 0.0, 1.0), spec


def body(c: Canvas, p: FaceParams, head: Head) -> None:
    """Neck and shoulders (with clothes), behind the head."""
    c = c.crop(0.0, 0.33, 0.55, 0.25)  # below y = 0.08
    cx = -head.shift * 0.6
    sd = implicit_sd(c.x - F32(cx), c.y - F32(0.7), 0.62, 0.27)
    alpha = c.cover(sd)
    shade, _ = lambert(p, (c.x - F32(cx)) / F32(0.62), (c.y - F32(0.7)) / F32(0.3))
    c.paint(alpha, p.clothes_rgb)
    c.set_shade(alpha, shade)
    neck = c.cover(np.maximum(np.abs(c.x - F32(cx * 0.8)) - F32(p.neck_w), F32(0.1) - c.y))
    c.paint(neck, np.asarray(p.skin, F32) * F32(0.92))
    c.set_shade(neck, F32(0.55) + F32(0.3) * sstep(0.3, 0.5, c.y))


def hair_colour(c: Canvas, p: FaceParams, head: Head, rng: np.random.Generator) -> np.ndarray:
    """The hair's colour over the canvas [h,w,3]: strands radiating from above the crown (two octaves), or curls.
    Both hair layers use it, so strands run on from the back layer into the front one."""
    base = np.asarray(p.hair_rgb, F32)
    if p.hair_style == "curly":
        curls = np.abs(c.noise(rng, 70)) + F32(0.5) * np.abs(c.noise(rng, 140))
        noise = rng.standard_normal(c.shade.shape, dtype=F32)
        return base * (F32(1.25) - F32(0.3) * curls + F32(0.05) * noise)[..., None]
    angle = np.arctan2(c.x - F32(p.part - head.shift), c.y - F32(p.face_top - 0.2))
    strands = int(0.6 * p.strand_freq / c.px) + 8  # about one strand per 1.5 px along a 0.25-radius arc
    row = (rng.standard_normal((1, strands), dtype=F32) * F32(0.6) + cv2.resize(
        rng.standard_normal((1, strands // 8 + 2), dtype=F32), (strands, 1), interpolation=cv2.INTER_CUBIC))
    idx = ((angle + F32(np.pi)) * F32(strands / (2 * np.pi))).astype(F32)
    tex = cv2.remap(row, idx, np.zeros_like(idx), cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
    return base * (F32(1.0) + F32(0.22) * tex)[..., None]


def hair(c: Canvas, p: FaceParams, head: Head, colour: np.ndarray, rng: np.random.Generator, front: bool) -> None:
    """Back layer: the hair mass behind the head (long and voluminous styles). Front layer: the cap over the
    skull down to the hairline, with bangs, parting and a sheen band."""
    if p.hair_style == "bald" and front:
        return
    cx, top = -head.shift, p.face_top
    thick = {"buzz": 0.004, "bald": 0.01, "short": 0.03, "medium": 0.04, "long": 0.04, "curly": 0.06}[p.hair_style]
    thick *= p.volume
    dx, dy = c.x - F32(cx), c.y - F32(0.02)
    cap = implicit_sd(dx, dy, p.face_w * 1.06 + thick, 0.02 - top + thick)
    cap = cap + F32(0.002) * c.noise(rng, 150)  # a ragged edge of strand tips
    if not front:
        if p.hair_style in ("medium", "long", "curly"):
            width = F32(p.face_w * 1.05 + thick) + F32(0.08 * p.volume) * sstep(-0.1, 0.5, c.y)
            curtain = np.maximum(np.abs(dx) - width, c.y - F32(p.hair_len if p.hair_style == "long" else 0.12)
                                 - F32(0.02) * c.noise(rng, 20))
            curtain = np.maximum(curtain, F32(-0.1) - c.y)
            if p.hair_style == "curly":  # a bushy outline instead of a hanging curtain
                sd = cap - F32(0.03) - F32(0.012) * c.noise(rng, 30)
            else:
                sd = np.minimum(cap, curtain)
        else:
            sd = cap
        alpha = c.cover(sd)
        if p.hair_style == "bald":  # a fringe around the back of the head, seen beside the ears
            alpha = alpha * bump(c.y + F32(0.01), 0.06)
        shade = F32(0.45) + F32(0.25) * sstep(0.25, -0.2, c.y)
    else:
        part = F32(p.part - head.shift)
        side = (np.abs(dx) / F32(p.face_w)) ** 4
        line = F32(p.hairline) + F32(0.26) * side + F32(0.06) * (c.x - part) ** 2 / F32(p.face_w)
        bangs = F32(EYE_Y - 0.06) + F32(0.012) * c.noise(rng, 30) + F32(0.2) * side
        line = line + F32(p.fringe) * (np.maximum(bangs, line) - line) * sstep(0.9, 0.6, np.abs(dx) / F32(p.face_w))
        alpha = c.cover(np.maximum(cap, c.y - line - F32(0.003) * c.noise(rng, 150)))
        parting = np.clip(F32(1.0) - np.abs(c.x - part) * F32(1.0 / max(0.004, c.px)), 0.0, 1.0)
        alpha = alpha * (F32(1.0) - F32(0.6 * (1 - p.fringe)) * parting * sstep(-0.36, -0.25, c.y))
        alpha = alpha * F32(0.65 if p.hair_style == "buzz" else 1.0)
        shade, _ = lambert(p, dx / F32(p.face_w * 1.2), (c.y - F32(0.0)) / F32(0.45))
        c.darken(F32(0.25) * c.cover(np.maximum(cap, c.y - line - F32(0.012))) * (F32(1.0) - alpha))
    c.paint(alpha, colour)
    c.set_shade(alpha, shade)
    if front:
        ring = gauss((np.sqrt(dx * dx + (c.y - F32(0.05)) ** 2) - F32(0.3)) ** 2, 0.02)
        c.gloss += alpha * ring * F32(0.08) * (colour[..., 0] + F32(0.3))


def head_layer(c: Canvas, p: FaceParams, head: Head, rng: np.random.Generator) -> tuple[Canvas, np.ndarray]:
    """Ears, then the skin of the head with its texture; returns the head's window and signed distance there
    (for beards)."""
    skin = np.asarray(p.skin, F32)
    for side in (-1, 1):
        ex = side * (head.radius * np.cos(head.yaw)) - head.shift
        vis = max(0.15, 1 - 1.6 * side * np.sin(head.yaw))
        ew, eh = 0.03 * p.ear_size * vis, 0.065 * p.ear_size
        ec = c.crop(ex + side * ew * 0.6, 0.045, ew * 1.5, eh * 1.2)
        ux, uy = ec.x - F32(ex + side * ew * 0.6), ec.y - F32(0.045)
        alpha = ec.cover(implicit_sd(ux, uy + F32(0.2) * np.maximum(uy, 0), ew, eh))
        ec.paint(alpha, skin * F32(0.95))
        bowl = ec.cover(implicit_sd(ux - F32(side * ew * 0.15), uy, ew * 0.45, eh * 0.6))
        ec.set_shade(alpha, F32(p.ambient + 0.3) - F32(0.25) * bowl)
    # skull and face: an ellipse above y = cy; below it a superellipse whose exponent squares the jaw
    cy = 0.02
    c = c.crop(-head.shift, (p.face_top + p.chin_y) / 2, p.face_w + 0.03, (p.chin_y - p.face_top) / 2 + 0.03)
    dx, dy = c.x + F32(head.shift), c.y - F32(cy)
    upper = dy < 0
    span = np.where(upper, F32(cy - p.face_top), F32(p.chin_y - cy))
    t = dy / span
    q = np.where(upper, F32(2.0), F32(2.0 + 3.0 * p.jaw))
    half = F32(p.face_w) * (F32(1.0) - F32(0.12) * np.maximum(t, 0))
    at = np.abs(t) + F32(1e-6)
    f = (dx / half) ** 2 + at**q
    grad = np.sqrt((F32(2.0) * dx / half**2) ** 2 + (q * at ** (q - F32(1.0)) / span) ** 2)
    sd = (f - F32(1.0)) / grad
    alpha = c.cover(sd)
    texture = (F32(1.0) + F32(0.05 * p.skin_texture) * c.noise(rng, 6) + F32(0.02 * p.skin_texture)
               * rng.standard_normal(c.shade.shape, dtype=F32))
    colour = skin * texture[..., None]
    if p.freckles > 0:
        dots = sstep(1.6, 2.4, c.noise(rng, 90)) * gauss(c.x * c.x + (c.y - F32(0.06)) ** 2, 0.16) * F32(p.freckles)
        colour = colour * (F32(1.0) - F32(0.35) * dots)[..., None]
    c.paint(alpha, colour)
    shade, spec = lambert(p, dx / F32(p.face_w * 1.05), t * F32(0.85))
    c.set_shade(alpha, shade)
    c.gloss += alpha * spec * F32(0.12)
    c.darken(F32(0.35) * alpha * sstep(-0.02, -0.09, sd))  # falloff near the silhouette
    return c, sd
