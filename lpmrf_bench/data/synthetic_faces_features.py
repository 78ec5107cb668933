"""The facial features of a synthetic face (eyes, brows, nose, mouth, beard, glasses), each drawn in its own
bounding box of the `Canvas`. Positions follow the aligned landmarks in `synthetic_faces_params`."""
from __future__ import annotations

import cv2
import numpy as np

from lpmrf_bench.data.synthetic_faces_draw import F32, Canvas, Head, bump, gauss, implicit_sd, sstep
from lpmrf_bench.data.synthetic_faces_params import EYE_X, EYE_Y, MOUTH_Y, NOSE_Y, FaceParams

DARK = np.array([0.05, 0.035, 0.03], F32)


def eye(c: Canvas, p: FaceParams, head: Head, side: int) -> None:
    """Sclera between two lid curves, iris with a dark limbal ring, pupil, catch-light, lash line, crease."""
    x0, squash = head.x(side * EYE_X)
    y0, w = EYE_Y + p.eye_dy, p.eye_w
    e = c.crop(x0, y0, w * squash * 1.5, w * 1.3)
    ux, uy = (e.x - F32(x0)) / F32(w * squash), (e.y - F32(y0)) / F32(w)
    ex = ux * F32(side)  # + towards the outer corner
    ey = uy + F32(p.eye_tilt) * ex
    span = np.clip(F32(1.0) - ex * ex, 0.0, 1.0)
    upper = F32(-0.42 * p.eye_open) * span ** F32(0.8) * (F32(1.0) - F32(0.15) * ex)
    lower = F32(0.26) * span ** F32(0.9) * (F32(1.0) + F32(0.1) * ex)
    inside = np.maximum(np.maximum(upper - ey, ey - lower) * F32(w), (np.abs(ex) - F32(1.0)) * F32(w * squash))
    sclera = e.cover(inside)
    e.darken(F32(0.12) * gauss(ux * ux * F32(0.5) + (uy + F32(0.1)) ** 2, 1.3))  # eye socket
    e.paint(sclera, np.array([0.93, 0.89, 0.85], F32))
    gx, gy = p.gaze
    r = np.sqrt((ux - F32(gx)) ** 2 + (uy - F32(gy)) ** 2) * F32(1.0 / 0.44)
    iris = np.asarray(p.iris_rgb, F32) * (F32(1.25) - F32(0.6) * sstep(0.55, 1.0, r))[..., None]
    e.paint(sclera * e.cover((r - F32(1.0)) * F32(0.44 * w)), iris)
    e.paint(sclera * e.cover((r - F32(0.42)) * F32(0.44 * w)), DARK * F32(0.5))
    e.darken(sclera * F32(0.3) * bump(ey - upper, 0.3))  # the upper lid's shadow on the eyeball
    lx, ly = p.light[0], p.light[1]
    glint = np.sqrt((ux - F32(gx + 0.16 * lx - 0.1)) ** 2 + (uy - F32(gy + 0.12 * ly - 0.14)) ** 2)
    e.gloss += sclera * e.cover((glint - F32(0.1)) * F32(w)) * F32(0.8)
    lid = F32(p.lash) * bump((ey - upper + F32(0.04)) * F32(w), 0.1 * w + e.px * 0.5)
    lid = lid * sstep(1.25, 0.9, np.abs(ex)) * (F32(0.75) + F32(0.25) * sstep(-0.6, 0.8, ex))
    e.paint(lid, DARK)
    lower_lid = bump((ey - lower - F32(0.03)) * F32(w), 0.05 * w + e.px * 0.5) * sstep(1.1, 0.7, np.abs(ex))
    e.paint(F32(0.35) * lower_lid, DARK)
    crease = bump((ey - upper + F32(0.38)) * F32(w), 0.07 * w + e.px * 0.4) * sstep(1.0, 0.5, np.abs(ex))
    e.darken(F32(0.25) * crease)
    if w / e.px >= 8:  # lashes once the eye is wide enough to show them (about 160 px images)
        e.paint(lashes(e, p, x0, y0, w, squash, side), DARK)


def lashes(e: Canvas, p: FaceParams, x0: float, y0: float, w: float, squash: float, side: int) -> np.ndarray:
    """Coverage of short curved strokes rising from the upper lid, longer towards the outer corner."""
    ex = np.linspace(-0.75, 1.0, 14)
    t = np.linspace(0.0, 1.0, 4)[:, None]
    span = 1.0 - ex**2
    base = -0.42 * p.eye_open * span**0.8 * (1.0 - 0.15 * ex) - 0.04
    length = 0.22 + 0.12 * (ex + 0.75)
    lash_ex = ex + length * (0.25 + 0.5 * ex) * t
    lash_ey = base - length * (t - 0.5 * t * t) - p.eye_tilt * lash_ex
    col, row = e.pixel(x0 + lash_ex * side * w * squash, y0 + lash_ey * w)
    mask = np.zeros(e.shade.shape, np.uint8)
    points = np.round(np.stack([col.T, row.T], axis=2) * 16).astype(np.int32, order="C")  # 4 fraction bits
    cv2.polylines(mask, list(points), False, 255, 1, cv2.LINE_AA, shift=4)
    return mask.astype(F32) * F32(p.lash / 255.0)


def brow(c: Canvas, p: FaceParams, head: Head, side: int, rng: np.random.Generator) -> None:
    """A tapered arc of hairs above the eye, thick at the inner end."""
    x0, squash = head.x(side * (EYE_X + 0.01))
    y0 = EYE_Y + p.eye_dy - 0.062 + p.brow_dy
    w = p.eye_w * 1.25
    b = c.crop(x0, y0 - 0.01, w * squash * 1.4, 0.035)
    bx = (b.x - F32(x0)) * F32(side / (w * squash))
    mid = F32(y0) - F32(0.006 + 0.012 * p.brow_arch) * np.clip(F32(1.0) - ((bx - F32(0.25)) / F32(1.1)) ** 2, 0, 1)
    thick = F32(p.brow_thick) * (F32(1.0) - F32(0.7) * sstep(-0.5, 1.3, bx))
    alpha = b.cover(np.abs(b.y - mid) - thick * F32(0.5)) * sstep(-1.1, -0.8, bx) * sstep(1.35, 1.05, bx)
    hairs = np.clip(F32(0.85) + F32(0.2) * b.noise(rng, 220, aspect=0.25), 0.0, 1.0)
    colour = np.asarray(p.hair_rgb, F32) * F32(0.55) + F32(0.45) * np.asarray(p.skin, F32) * F32(0.3)
    b.paint(alpha * hairs, colour)


def nose(c: Canvas, p: FaceParams, head: Head) -> None:
    """Shading only: the side away from the light, the ball of the tip, the wings, nostrils and the shadow below."""
    tip_y = NOSE_Y + p.nose_len
    tip_x, squash = head.x(0.0, depth=0.06)
    top_x, _ = head.x(0.0, depth=0.015)
    n = c.crop((tip_x + top_x) / 2, (EYE_Y + tip_y) / 2 + 0.01, p.nose_w * 2.2, (tip_y - EYE_Y) / 2 + 0.04)
    t = np.clip((n.y - F32(EYE_Y)) / F32(tip_y - EYE_Y), 0.0, 1.2)
    mid = F32(top_x) + (F32(tip_x - top_x)) * t
    width = (F32(0.012) + F32(p.nose_w * 0.8) * t**3) * F32(squash)
    away = -np.sign(p.light[0] + 1e-3) if abs(p.yaw) < 0.12 else -np.sign(p.yaw)
    d = (n.x - mid) * F32(away)
    along = sstep(-0.1, 0.3, t) * sstep(1.15, 1.0, t)
    strength = 0.12 + 0.35 * abs(p.light[0]) + 0.4 * abs(np.sin(p.yaw))
    n.darken(F32(strength) * along * sstep(0.0, 0.006, d) * sstep(0.012, -0.002, d - width))
    n.darken(F32(0.08) * along * sstep(0.0, 0.006, -d) * sstep(0.012, -0.002, -d - width))
    ball = (n.x - F32(tip_x)) ** 2 + (n.y - F32(tip_y - 0.005)) ** 2
    n.gloss += F32(0.1) * gauss(ball, p.nose_w * 0.45)
    bridge = bump(n.x - mid + F32(0.004 * away), max(0.004, n.px)) * along
    n.gloss += F32(0.05) * bridge
    for s in (-1, 1):
        wx = F32(tip_x + s * p.nose_w * 0.8 * squash)
        wing = np.sqrt((n.x - wx) ** 2 + (n.y - F32(tip_y)) ** 2) - F32(p.nose_w * 0.45)
        n.darken(F32(0.25) * bump(wing, 0.004 + n.px * 0.5) * sstep(tip_y - 0.03, tip_y, n.y))
        nostril = implicit_sd(n.x - F32(tip_x + s * p.nose_w * 0.42 * squash), n.y - F32(tip_y + 0.011),
                              p.nose_w * 0.3 * squash, 0.0055)
        n.paint(F32(0.8) * n.cover(nostril), np.asarray(p.skin, F32) * F32(0.25))
    n.darken(F32(0.3) * gauss((n.x - F32(tip_x)) ** 2 * F32(0.4) + (n.y - F32(tip_y + 0.025)) ** 2, 0.018))


def mouth(c: Canvas, p: FaceParams, head: Head) -> None:
    """Upper lip with a cupid's bow, fuller lower lip, the dark line (or open mouth and teeth) between them."""
    x0, squash = head.x(0.0, depth=0.02)
    y0, w = MOUTH_Y + p.mouth_dy, p.mouth_w
    m = c.crop(x0, y0 + 0.01, w * squash + 0.02, 0.055)
    mx = (m.x - F32(x0)) / F32(w * squash)
    span = np.clip(F32(1.0) - mx * mx, 0.0, 1.0)
    line = F32(y0) - F32(0.014 * p.smile) * mx * mx
    top = line - F32(p.lip_up) * np.sqrt(span) * (F32(1.0) - F32(0.35) * bump(mx, 0.18))
    gap = F32(p.mouth_open) * np.sqrt(span)
    bottom = line + gap + F32(p.lip_lo) * span ** F32(0.6)
    ends = (np.abs(mx) - F32(1.0)) * F32(w * squash)
    lips = m.cover(np.maximum(np.maximum(top - m.y, m.y - bottom), ends))
    lip_rgb = np.asarray(p.lip_rgb, F32)
    m.paint(lips, lip_rgb * (F32(0.85) + F32(0.15) * sstep(0.0, 0.3, (m.y - line) / F32(p.lip_lo)))[..., None])
    shine = (m.y - line - gap - F32(p.lip_lo * 0.45)) ** 2 + (mx * F32(w * 0.3)) ** 2
    m.gloss += lips * F32(0.12) * gauss(shine, p.lip_lo * 0.35)
    if p.mouth_open > 0:
        inner = m.cover(np.maximum(np.maximum(line - m.y, m.y - line - gap), (np.abs(mx) - F32(0.85)) * F32(w)))
        teeth = sstep(0.9, 0.6, np.abs(mx)) * sstep(0.8, 0.5, (m.y - line) / (gap + F32(1e-4)))
        m.paint(inner, np.array([0.25, 0.08, 0.08], F32) + teeth[..., None] * np.array([0.6, 0.62, 0.56], F32))
    seam = bump(m.y - line - gap * F32(0.5), 0.7 * max(0.002, m.px)) * sstep(1.15, 0.95, np.abs(mx))
    m.paint(F32(0.7) * seam, lip_rgb * F32(0.3))
    m.darken(F32(0.25) * gauss((m.y - bottom - F32(0.012)) ** 2 + (mx * F32(w * 0.4)) ** 2, 0.012))
    m.darken(F32(0.2) * gauss((np.abs(mx) - F32(1.02)) ** 2 * F32(w * w) + (m.y - line) ** 2, 0.008))


def cheeks(c: Canvas, p: FaceParams, head: Head) -> None:
    """Blush on the cheekbones and the nasolabial folds that deepen with age."""
    for s in (-1, 1):
        x0, _ = head.x(s * 0.12)
        k = c.crop(x0, 0.12, 0.08, 0.12)
        k.paint(F32(p.blush * 0.35) * gauss((k.x - F32(x0)) ** 2 + (k.y - F32(0.09)) ** 2, 0.05),
                np.asarray(p.skin, F32) * np.array([1.05, 0.75, 0.75], F32))
        wing, _ = head.x(s * (p.nose_w + 0.01))
        corner, _ = head.x(s * (p.mouth_w + 0.012))
        t = np.clip((k.y - F32(NOSE_Y)) / F32(MOUTH_Y + 0.02 - NOSE_Y), 0.0, 1.0)
        fold_x = F32(wing) + (F32(corner) - F32(wing)) * t + F32(s * 0.01) * np.sin(t * F32(np.pi))
        fold = bump(k.x - fold_x, max(0.004, k.px * 1.5)) * sstep(NOSE_Y - 0.01, NOSE_Y + 0.01, k.y)
        k.darken(F32(0.04 + 0.16 * p.folds) * fold * sstep(MOUTH_Y + 0.04, MOUTH_Y + 0.01, k.y))


def beard(c: Canvas, p: FaceParams, head: Head, head_sd: np.ndarray, rng: np.random.Generator) -> None:
    """Stubble darkens the jaw, chin and upper lip; a beard covers them with hair and thickens the chin.
    `c` is the head's window and `head_sd` the signed distance to the head's outline there."""
    if p.beard == "none":
        return
    mid, _ = head.x(0.0)
    dx = (c.x - F32(mid)) / F32(p.face_w)
    top = np.interp(np.abs(dx), (0.0, 0.3, 0.55, 0.85, 1.2), (0.145, 0.17, 0.21, 0.06, -0.02)).astype(F32)
    mouth_hole = implicit_sd(c.x - F32(mid), c.y - F32(MOUTH_Y + p.mouth_dy + 0.004), p.mouth_w * 1.05, 0.03)
    if not p.moustache:
        upper_lip = np.maximum(c.y - F32(MOUTH_Y), np.abs(c.x - F32(mid)) - F32(p.mouth_w * 1.3))
        mouth_hole = np.minimum(mouth_hole, upper_lip)
    vol = 0.0 if p.beard == "stubble" else 0.015 * p.volume
    region = c.cover(np.maximum(np.maximum(head_sd - F32(vol) * sstep(0.1, 0.3, c.y), top - c.y), -mouth_hole))
    region = region * sstep(-0.02, 0.03, c.y - top)
    if p.beard == "stubble":
        dots = np.clip(F32(0.7) + F32(0.25) * rng.standard_normal(c.shade.shape, dtype=F32), 0.0, 1.0)
        c.paint(region * dots * F32(0.4), np.asarray(p.hair_rgb, F32) * F32(0.4))
        return
    strands = F32(0.85) + F32(0.15) * c.noise(rng, 120, aspect=0.3) + F32(0.1) * c.noise(rng, 10)
    c.paint(region * F32(0.95), np.asarray(p.hair_rgb, F32) * F32(0.8) * strands[..., None])


def bar(c: Canvas, y: float, x1: float, x2: float, thick: float, colour: np.ndarray) -> None:
    """A horizontal bar from x1 to x2 (a bridge or temple of the glasses)."""
    lo, hi = min(x1, x2), max(x1, x2)
    if hi - lo < c.px:
        return
    k = c.crop((lo + hi) / 2, y, (hi - lo) / 2, thick)
    sd = np.maximum(np.abs(k.y - F32(y)) - F32(thick / 2), np.abs(k.x - F32((lo + hi) / 2)) - F32((hi - lo) / 2))
    k.paint(k.cover(sd), colour)


def glasses(c: Canvas, p: FaceParams, head: Head) -> None:
    """Two rims (round or rounded-rectangular), tinted lenses with a reflection, bridge and temples."""
    if not p.glasses:
        return
    rim = np.asarray(p.glasses_rgb, F32)
    y0 = EYE_Y + p.eye_dy + 0.006
    edges = {}
    for side in (-1, 1):
        x0, squash = head.x(side * EYE_X)
        a, b = p.eye_w * 1.55 * squash, p.eye_w * (1.25 if p.glasses_round else 1.0)
        g = c.crop(x0, y0, a + 0.01, b + 0.01)
        sd = implicit_sd(g.x - F32(x0), g.y - F32(y0), a, b, 2.0 if p.glasses_round else 4.0)
        lens = g.cover(sd)
        g.paint(lens * F32(0.25), np.asarray(p.lens_tint, F32) * g.albedo.mean(axis=(0, 1)))
        g.gloss += lens * F32(0.1) * sstep(0.3, 0.9, np.sin((g.x - g.y) * F32(40.0)))
        g.paint(g.cover(np.abs(sd) - F32(p.glasses_thick * 0.5)), rim)
        edges[side] = (x0 - a, x0 + a)
    bar(c, y0 - 0.012, edges[-1][1], edges[1][0], p.glasses_thick * 0.9, rim)
    bar(c, y0 - 0.015, head.x(-head.radius)[0], edges[-1][0], p.glasses_thick * 0.9, rim)
    bar(c, y0 - 0.015, edges[1][1], head.x(head.radius)[0], p.glasses_thick * 0.9, rim)
