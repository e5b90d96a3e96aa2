"""SynthLIP's body model and rasteriser: one articulated, dressed person per image.

The person is a 2.5-D puppet. A skeleton with LIP's 16 joints is posed in 3-D (person frame:
X = the person's own left, Y = up, Z = forward), turned by a yaw angle (the view), projected
orthographically, and drawn part by part with a painter's algorithm on each part's depth. Limbs are
tapered capsules, the torso is the silhouette of stacked elliptic cross-sections, head, face, hair,
hat and sunglasses are projected ellipsoids, so profiles and back views fall out of the geometry
(in a back view the hair ellipsoid is in front of the face ellipsoid). Garments are layers along a
limb chain (sleeves, trousers, socks, gloves) or extra shapes over the torso (coat tails, skirts).

Every shape carries a LIP id, a PASCAL-Person-Part id, a material (colour and texture) and a
visibility group (used to flag self-occluded joints). Left and right limbs share materials, so only
the global structure says which side is which. Drawing uses PIL's C polygon filler; colouring,
lighting and noise are numpy array operations on the whole image.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass

import numpy as np

# LIP ids (lipkit.labels.LIP order).
(BG, HAT, HAIR, GLOVE, SUNGLASSES, UPPER, DRESS, COAT, SOCKS, PANTS, JUMPSUIT, SCARF, SKIRT, FACE,
 L_ARM, R_ARM, L_LEG, R_LEG, L_SHOE, R_SHOE) = range(20)
# PASCAL-Person-Part ids.
P_BG, P_HEAD, P_TORSO, P_UARM, P_LARM, P_ULEG, P_LLEG = range(7)
# Visibility groups: which body segment owns a pixel (joints covered by another segment are
# self-occluded; joints covered by an occluder are hidden).
G_BG, G_TORSO, G_HEAD, G_LUA, G_LFA, G_RUA, G_RFA, G_LTH, G_LSH, G_RTH, G_RSH = range(11)
G_OCC = 255
# Which groups count as "the joint's own" (LIP joint order, see lipkit.labels.LIP_POSE_JOINTS).
JOINT_GROUPS: tuple[frozenset[int], ...] = tuple(frozenset(g) for g in (
    (G_RSH, G_TORSO), (G_RTH, G_RSH, G_TORSO), (G_RTH, G_TORSO), (G_LTH, G_TORSO),
    (G_LTH, G_LSH, G_TORSO), (G_LSH, G_TORSO), (G_TORSO, G_LTH, G_RTH), (G_TORSO, G_HEAD),
    (G_TORSO, G_HEAD), (G_HEAD,), (G_RFA,), (G_RUA, G_RFA), (G_RUA, G_TORSO), (G_LUA, G_TORSO),
    (G_LUA, G_LFA), (G_LFA,),
))

VIEW_YAW = {"front": 0.0, "left": 90.0, "back": 180.0, "right": -90.0}


# --------------------------------------------------------------------------------------- colours
_SKIN = np.array([(255, 224, 200), (241, 194, 167), (224, 172, 138), (198, 134, 100),
                  (160, 104, 70), (120, 76, 50), (85, 55, 38)], np.float32)
_HAIR = np.array([(18, 14, 12), (40, 28, 20), (85, 56, 34), (140, 100, 60), (205, 175, 120),
                  (125, 55, 30), (150, 150, 150)], np.float32)
_HAIR_P = np.array([0.34, 0.28, 0.16, 0.08, 0.07, 0.04, 0.03])


def skin_color(rng: np.random.Generator) -> np.ndarray:
    t = rng.uniform(0, len(_SKIN) - 1)
    i = int(t)
    c = _SKIN[i] + (t - i) * (_SKIN[min(i + 1, len(_SKIN) - 1)] - _SKIN[i])
    return np.clip(c + rng.normal(0, 6, 3), 0, 255).astype(np.float32)


def hair_color(rng: np.random.Generator) -> np.ndarray:
    c = _HAIR[rng.choice(len(_HAIR), p=_HAIR_P)]
    return np.clip(c * rng.uniform(0.8, 1.2) + rng.normal(0, 5, 3), 0, 255).astype(np.float32)


def cloth_color(rng: np.random.Generator) -> np.ndarray:
    """Garment colours: many neutrals and denims, some saturated colours (as in street photos)."""
    u = rng.random()
    if u < 0.38:  # black .. white
        v = rng.choice([rng.uniform(10, 60), rng.uniform(60, 180), rng.uniform(180, 245)], p=[0.5, 0.3, 0.2])
        c = np.full(3, v) + rng.normal(0, 4, 3)
    elif u < 0.52:  # denim
        c = np.array(colorsys.hsv_to_rgb(rng.uniform(0.56, 0.64), rng.uniform(0.3, 0.7), rng.uniform(0.25, 0.75))) * 255
    elif u < 0.62:  # earth tones
        c = np.array(colorsys.hsv_to_rgb(rng.uniform(0.05, 0.15), rng.uniform(0.2, 0.6), rng.uniform(0.3, 0.8))) * 255
    else:
        c = np.array(colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.3, 0.95), rng.uniform(0.3, 0.95))) * 255
    return np.clip(c, 0, 255).astype(np.float32)


def scene_color(rng: np.random.Generator) -> np.ndarray:
    """Background and clutter colours: drawn from the same distributions as skin, hair and clothes."""
    u = rng.random()
    if u < 0.45:
        return cloth_color(rng)
    if u < 0.6:
        return skin_color(rng)
    if u < 0.7:
        return hair_color(rng)
    v = rng.uniform(90, 235)  # walls, pavement
    return np.clip(np.full(3, v) + rng.normal(0, 12, 3), 0, 255).astype(np.float32)


@dataclass
class Material:
    color: np.ndarray
    color2: np.ndarray | None = None
    pattern: int = 0  # 0 plain, 1 stripes, 2 checks
    period: float = 8.0
    angle: float = 0.0
    fold: float = 0.08  # amplitude of the low-frequency shading (folds, skin tone variation)


def garment_material(rng: np.random.Generator, patterned: float = 0.25) -> Material:
    m = Material(cloth_color(rng), fold=rng.uniform(0.06, 0.18))
    if rng.random() < patterned:
        m.pattern = 1 if rng.random() < 0.7 else 2
        m.color2 = cloth_color(rng)
        m.period = rng.uniform(0.02, 0.08)  # in person heights, scaled to pixels later
        m.angle = rng.choice([0.0, 90.0, rng.uniform(0, 180)], p=[0.5, 0.3, 0.2])
    return m


# ---------------------------------------------------------------------------------- geometry
def _rot_x(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _rot_y(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _rot_z(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def limb_dir(abd: float, flex: float, side: float) -> np.ndarray:
    """Unit direction of a limb hanging down, raised sideways by ``abd`` and forwards by ``flex`` (deg)."""
    a, f = math.radians(abd), math.radians(flex)
    return np.array([side * math.sin(a), -math.cos(a) * math.cos(f), math.cos(a) * math.sin(f)])


class Camera:
    """Yaw about the vertical axis, orthographic projection, in-plane roll; image y points down."""

    def __init__(self, yaw_deg: float, roll_deg: float):
        y, r = math.radians(yaw_deg), math.radians(roll_deg)
        c, s = math.cos(y), math.sin(y)
        # camera = R @ person: person left (X) -> (cos, 0, sin), forward (Z) -> (-sin, 0, cos)
        self.R = np.array([[c, 0, -s], [0, 1, 0], [s, 0, c]])
        cr, sr = math.cos(r), math.sin(r)
        # 2x3 linear map person -> image (x right, y down), and depth row (toward the camera)
        self.P = np.array([[cr, -sr], [-sr, -cr]]) @ self.R[:2]
        self.zrow = self.R[2]

    def xy(self, p: np.ndarray) -> np.ndarray:
        return p @ self.P.T

    def z(self, p: np.ndarray) -> float | np.ndarray:
        return p @ self.zrow


def capsule(p0, p1, r0: float, r1: float, cap0: bool = True, cap1: bool = True, n: int = 7) -> np.ndarray:
    d = p1 - p0
    ang = math.atan2(d[1], d[0]) if float(d @ d) > 1e-12 else math.pi / 2
    a1 = ang + (np.linspace(-math.pi / 2, math.pi / 2, n) if cap1 else np.array([-math.pi / 2, math.pi / 2]))
    a0 = ang + (np.linspace(math.pi / 2, 1.5 * math.pi, n) if cap0 else np.array([math.pi / 2, 1.5 * math.pi]))
    pts1 = p1 + r1 * np.stack([np.cos(a1), np.sin(a1)], 1)
    pts0 = p0 + r0 * np.stack([np.cos(a0), np.sin(a0)], 1)
    return np.concatenate([pts1, pts0])


_CIRCLE = np.stack([np.cos(np.linspace(0, 2 * np.pi, 20, endpoint=False)),
                    np.sin(np.linspace(0, 2 * np.pi, 20, endpoint=False))])


def ellipsoid(cam: Camera, centre: np.ndarray, R: np.ndarray, axes) -> np.ndarray:
    """Outline of the projected ellipsoid ``centre + R diag(axes) (unit ball)`` as a polygon."""
    M = cam.P @ R @ np.diag(axes)
    w, V = np.linalg.eigh(M @ M.T)
    return cam.xy(centre) + (V @ (np.sqrt(np.maximum(w, 1e-12))[:, None] * _CIRCLE)).T


# -------------------------------------------------------------------------------- person
@dataclass
class Prim:
    key: float
    poly: np.ndarray
    lip: int
    ppp: int
    mat: int
    group: int


POSES_ARM = ("hang", "swing", "raised", "akimbo", "crossed", "phone", "behind", "pocket", "reach")
POSES_ARM_P = (0.34, 0.14, 0.07, 0.08, 0.08, 0.06, 0.07, 0.08, 0.08)
POSES_LEG = ("stand", "walk", "wide", "sit", "bent")
POSES_LEG_P = (0.5, 0.24, 0.1, 0.09, 0.07)


def _arm_pose(kind: str, rng, swing: float) -> tuple[float, float, float, float]:
    u = rng.uniform
    if kind == "hang":
        a, f = u(4, 18), u(-10, 12)
        return a, f, a + u(-8, 8), f + u(0, 30)
    if kind == "swing":
        f = swing * u(12, 35)
        return u(4, 14), f, u(0, 14), f + u(5, 45)
    if kind == "raised":
        a = u(95, 170)
        return a, u(-15, 30), a + u(-25, 45), u(-20, 40)
    if kind == "akimbo":
        return u(28, 50), u(-10, 10), u(-75, -40), u(-15, 10)
    if kind == "crossed":
        return u(0, 15), u(10, 35), u(-90, -60), u(55, 90)
    if kind == "phone":
        return u(5, 25), u(5, 30), u(-45, -10), u(120, 160)
    if kind == "behind":
        return u(4, 14), u(-35, -18), u(-55, -25), u(-40, -15)
    if kind == "pocket":
        return u(8, 16), u(-6, 6), u(-25, -8), u(15, 35)
    a = u(10, 60)  # reach: arm forward/sideways, holding something
    f = u(30, 90)
    return a, f, a + u(-20, 20), f + u(0, 50)


def _leg_pose(kind: str, rng, side: float, lead: float) -> tuple[float, float, float, float]:
    u = rng.uniform
    if kind == "stand":
        a, f = u(1, 7), u(-5, 6)
        return a, f, a + u(-3, 3), f - u(0, 8)
    if kind == "walk":
        f = u(12, 30) if side == lead else -u(8, 25)
        return u(1, 6), f, u(0, 5), f - (u(0, 15) if side == lead else u(10, 45))
    if kind == "wide":
        a = u(10, 22)
        return a, u(-5, 5), a - u(0, 8), u(-5, 5)
    if kind == "sit":
        f = u(60, 90)
        return u(5, 20), f, u(0, 10), f - u(65, 100)
    f = u(-10, 40) if side == lead else u(-5, 5)  # one knee bent (leaning, stepping)
    return u(2, 10), f, u(0, 8), f - (u(40, 90) if side == lead else u(0, 8))


def _sample_shape(rng: np.random.Generator) -> dict:
    """Body proportions in person heights; ``wf``/``wf2`` make upper and lower body stouter or slimmer."""
    u = rng.uniform
    wf, wf2 = u(0.86, 1.2), u(0.85, 1.25)
    return dict(
        head_r=0.062 * u(0.93, 1.08), head_w=0.048 * u(0.92, 1.08), head_d=0.056 * u(0.95, 1.05),
        neck_len=u(0.025, 0.04), neck_r=0.024 * wf, torso_len=0.29 * u(0.94, 1.06), sh_w=0.1 * wf,
        waist=u(0.68, 0.9), hip_w=0.05 * wf2, pelvis_w=0.085 * wf2, depth=0.065 * wf,
        ua=0.165 * u(0.95, 1.05), fa=0.14 * u(0.95, 1.05), hand=0.05, ua_r=0.029 * wf, fa_r=0.022 * wf,
        th=0.235 * u(0.95, 1.05), sh=0.225 * u(0.95, 1.05), th_r=0.048 * wf2, kn_r=0.034 * wf2,
        an_r=0.021, foot=0.11 * u(0.9, 1.1),
    )


def _sample_pose(rng: np.random.Generator) -> dict:
    """Arm and leg pose kinds with their joint angles, trunk lean/tilt and head turn (degrees)."""
    u = rng.uniform
    symmetric = rng.random() < 0.55
    k_l = rng.choice(POSES_ARM, p=POSES_ARM_P)
    k_r = k_l if symmetric and k_l not in ("phone", "reach") else rng.choice(POSES_ARM, p=POSES_ARM_P)
    lead = 1.0 if rng.random() < 0.5 else -1.0
    leg_kind = rng.choice(POSES_LEG, p=POSES_LEG_P)
    return dict(
        arm_kind=(str(k_l), str(k_r)), leg_kind=str(leg_kind),
        arms=(_arm_pose(k_l, rng, -lead), _arm_pose(k_r, rng, lead)),
        legs=(_leg_pose(leg_kind, rng, 1.0, lead), _leg_pose(leg_kind, rng, -1.0, lead)),
        lean=u(-8, 12) if leg_kind != "sit" else u(-15, 5), tilt=u(-6, 6),
        head_yaw=u(-30, 30), head_nod=u(-15, 15), head_tilt=u(-10, 10), toe_out=(u(0, 20), u(0, 20)),
    )


def _sample_main_garments(rng: np.random.Generator, o: dict) -> None:
    """Fill ``o`` with the top (upper clothes, dress or jumpsuit), its sleeves and hem, and the bottom."""
    u = rng.uniform
    r = rng.random()
    o["top"] = UPPER if r < 0.885 else (DRESS if r < 0.97 else JUMPSUIT)
    sl = rng.random()
    o["sleeve"] = (u(0.85, 1.0) if sl < 0.45 else u(0.15, 0.4) if sl < 0.8 else 0.0 if sl < 0.9 else u(0.55, 0.75))
    o["top_hem"] = u(0.95, 1.12)
    if o["top"] == UPPER:
        b = rng.random()
        if b < 0.68:
            o["bottom"], o["bottom_len"] = PANTS, u(0.97, 1.01)
        elif b < 0.82:
            o["bottom"], o["bottom_len"] = PANTS, u(0.25, 0.42)
        elif b < 0.89:
            o["bottom"], o["bottom_len"] = PANTS, u(0.65, 0.82)
        else:
            o["bottom"], o["bottom_len"] = SKIRT, u(0.25, 0.8)
    elif o["top"] == DRESS:
        o["bottom"], o["bottom_len"] = DRESS, u(0.25, 0.85)
    else:
        o["bottom"], o["bottom_len"] = JUMPSUIT, (u(0.9, 1.0) if rng.random() < 0.75 else u(0.3, 0.45))


def _sample_extras(rng: np.random.Generator, o: dict) -> None:
    """Fill ``o`` with coat, accessories, socks and shoes, hair style and trouser looseness."""
    u = rng.uniform
    o["coat"] = rng.random() < 0.3
    o["coat_len"] = rng.choice([0.0, u(0.15, 0.35), u(0.4, 0.7)], p=[0.35, 0.4, 0.25])
    o["coat_open"] = rng.random() < 0.7
    o["coat_strip"] = u(0.25, 0.5)
    o["hat"] = rng.random() < 0.12
    o["hat_kind"] = str(rng.choice(["beanie", "cap", "brim"], p=[0.4, 0.4, 0.2]))
    o["sunglasses"] = rng.random() < 0.05
    o["scarf"] = rng.random() < 0.05
    o["gloves"] = rng.random() < 0.04
    exposed = o["bottom"] == SKIRT or o["bottom"] == DRESS or o["bottom_len"] < 0.95
    o["socks"] = rng.random() < (0.3 if exposed else 0.08)
    o["sock_len"] = u(0.04, 0.35)
    o["shoes"] = rng.random() < 0.95
    o["hair"] = rng.random() >= 0.06  # shaved or bald heads: the scalp is skin, labelled face
    o["long_hair"] = o["hair"] and rng.random() < 0.4
    o["hairline"] = u(0.1, 0.45)
    o["hair_len"] = u(0.1, 0.3)
    o["wide"] = u(1.1, 1.45)  # trouser looseness


def _sample_outfit(rng: np.random.Generator) -> dict:
    """Garments and accessories; probabilities chosen so image frequencies are long-tailed like LIP's."""
    o: dict = {}
    _sample_main_garments(rng, o)
    _sample_extras(rng, o)
    return o


def _sample_colors(rng: np.random.Generator, outfit: dict) -> dict[str, Material]:
    """One material per body surface and garment.

    A dress and a jumpsuit are one garment each (LIP's definitions), so their top and bottom share
    one material: a jumpsuit drawn in two materials is indistinguishable from upper-clothes + pants.
    """
    u = rng.uniform
    cols = dict(skin=Material(skin_color(rng), fold=u(0.03, 0.08)), hair=Material(hair_color(rng), fold=u(0.08, 0.2)),
                top=garment_material(rng), bottom=garment_material(rng, 0.1), coat=garment_material(rng, 0.1),
                hat=garment_material(rng, 0.15), glasses=Material(np.full(3, u(5, 50), dtype=np.float32), fold=0.02),
                scarf=garment_material(rng, 0.4), gloves=garment_material(rng, 0.05),
                socks=garment_material(rng, 0.2), shoes=garment_material(rng, 0.0))
    if outfit["top"] in (DRESS, JUMPSUIT):  # the bottom material is still drawn: the RNG stream is unchanged
        cols["bottom"] = cols["top"]
    return cols


def sample_person(rng: np.random.Generator) -> dict:
    """Shape, pose, outfit and colours of one person (everything the renderer needs, no geometry).

    The four parts are drawn in this fixed order from ``rng``; the order is part of the data.
    """
    shape = _sample_shape(rng)
    pose = _sample_pose(rng)
    outfit = _sample_outfit(rng)
    colors = _sample_colors(rng, outfit)
    return dict(shape=shape, pose=pose, outfit=outfit, colors=colors)


def garment_names(outfit: dict) -> list[str]:
    names = {UPPER: "upper-clothes", DRESS: "dress", JUMPSUIT: "jumpsuits", PANTS: "pants", SKIRT: "skirt"}
    out = [names[outfit["top"]]]
    if outfit["bottom"] != outfit["top"]:
        out.append(names[outfit["bottom"]] if outfit["bottom_len"] >= 0.5 or outfit["bottom"] != PANTS else "shorts")
    for key, name in (("coat", "coat"), ("hat", "hat"), ("sunglasses", "sunglasses"), ("scarf", "scarf"),
                      ("gloves", "gloves"), ("socks", "socks"), ("shoes", "shoes")):
        if outfit[key]:
            out.append(name)
    return out


def _chain(cam, prims, pts3, radii, layers, skin_label, skin_mat, seg_ppp, seg_group, seg_bias):
    """Draw a limb chain (joints ``pts3``) as capsule pieces, each labelled by its outermost layer.

    ``layers``: (q0, q1, lip, ppp or None, mat, radius factor) in priority order, q = fraction of
    the chain's 3-D length.
    """
    seg_len = np.linalg.norm(np.diff(pts3, axis=0), axis=1)
    qj = np.concatenate([[0.0], np.cumsum(seg_len) / max(seg_len.sum(), 1e-9)])
    cuts = {float(q) for q in qj}
    for q0, q1, *_ in layers:
        cuts.update(q for q in (q0, q1) if 0.0 < q < 1.0)
    cuts = sorted(cuts)
    pts2 = cam.xy(pts3)
    zs = cam.z(pts3)
    for a, b in zip(cuts[:-1], cuts[1:]):
        if b - a < 1e-6:
            continue
        mid = 0.5 * (a + b)
        k = min(int(np.searchsorted(qj, mid, side="right")) - 1, len(seg_len) - 1)
        lab, ppp, mat, fac = skin_label, None, skin_mat, 1.0
        for q0, q1, l_lab, l_ppp, l_mat, l_fac in layers:
            if q0 <= mid < q1:
                lab, ppp, mat, fac = l_lab, l_ppp, l_mat, l_fac
                break
        span = max(qj[k + 1] - qj[k], 1e-9)
        ta, tb = (a - qj[k]) / span, (b - qj[k]) / span
        p0 = pts2[k] + ta * (pts2[k + 1] - pts2[k])
        p1 = pts2[k] + tb * (pts2[k + 1] - pts2[k])
        r0 = (radii[k] + ta * (radii[k + 1] - radii[k])) * fac
        r1 = (radii[k] + tb * (radii[k + 1] - radii[k])) * fac
        cap0 = any(abs(a - q) < 1e-9 for q in qj)
        cap1 = any(abs(b - q) < 1e-9 for q in qj)
        key = 0.5 * (zs[k] + zs[k + 1]) + seg_bias
        prims.append(Prim(key, capsule(p0, p1, r0, r1, cap0, cap1), lab,
                          seg_ppp[k] if ppp is None else ppp, mat, seg_group[k]))


# ------------------------------------------------------------------------------ build_person
# build_person draws the parts in a fixed order (torso layers, legs, skirts/coat tails, arms, head,
# scarf); primitives with equal depth keys are painted in that order, so it is part of the data.
@dataclass
class _BodyFrame:
    """Posed trunk and head in the person frame: key points and the torso/head rotations."""
    pelvis: np.ndarray
    spine: np.ndarray
    neck_base: np.ndarray
    neck_top: np.ndarray
    torso_rot: np.ndarray  # columns: the torso's lateral, up and forward axes
    up: np.ndarray
    lateral: np.ndarray
    forward: np.ndarray
    head_rot: np.ndarray
    head_centre: np.ndarray
    head_top: np.ndarray


def _body_frame(shape: dict, pose: dict) -> _BodyFrame:
    """Place pelvis, spine, neck and head from the body proportions, trunk lean/tilt and head turn."""
    leg_len = shape["th"] + shape["sh"] + 0.035
    pelvis = np.array([0.0, leg_len, 0.0])
    torso_rot = _rot_x(-math.radians(pose["lean"])) @ _rot_z(math.radians(pose["tilt"]))
    up, lateral, forward = torso_rot[:, 1], torso_rot[:, 0], torso_rot[:, 2]
    neck_base = pelvis + shape["torso_len"] * up
    spine = pelvis + 0.7 * shape["torso_len"] * up
    neck_top = neck_base + shape["neck_len"] * up
    head_rot = (torso_rot @ _rot_y(math.radians(pose["head_yaw"])) @ _rot_x(-math.radians(pose["head_nod"]))
                @ _rot_z(math.radians(pose["head_tilt"])))
    head_centre = neck_top + 0.85 * shape["head_r"] * head_rot[:, 1]
    head_top = head_centre + shape["head_r"] * head_rot[:, 1]
    return _BodyFrame(pelvis, spine, neck_base, neck_top, torso_rot, up, lateral, forward,
                      head_rot, head_centre, head_top)


class _TorsoStack:
    """Silhouette of the torso's stacked elliptic cross-sections, and the layers drawn on it.

    All torso layers share one depth (just behind the spine); each added layer is keyed a tiny bit
    above the previous one, so later layers (top over trousers, coat over top) are painted on top.
    """

    LEVELS = np.array([0.0, 0.1, 0.35, 0.65, 0.9, 1.0, 1.12, 1.3])  # 0 neck base .. 1 pelvis

    def __init__(self, cam: Camera, frame: _BodyFrame, shape: dict, prims: list[Prim]) -> None:
        self.cam, self.prims = cam, prims
        self.neck_base, self.pelvis = frame.neck_base, frame.pelvis
        self.key = float(cam.z(frame.spine)) - 0.02
        widths = np.array([0.55, 0.97, 0.93, shape["waist"] * 0.97, 0, 0, 0, 0]) * shape["sh_w"]
        widths[4:] = np.array([0.96, 1.0, 0.98, 0.97]) * shape["pelvis_w"]
        self.widths = widths
        self.depths = np.array([0.6, 0.9, 1.0, 0.9, 0.95, 1.0, 0.95, 0.9]) * shape["depth"]
        axis2 = cam.xy(frame.pelvis - frame.neck_base)
        # image-plane unit normal of the torso axis, and how much width / depth project onto it
        self.normal = np.array([-axis2[1], axis2[0]]) / max(float(np.hypot(*axis2)), 1e-9)
        self.width_proj, self.depth_proj = cam.xy(frame.lateral) @ self.normal, cam.xy(frame.forward) @ self.normal
        self.n_layers = 0

    def outline(self, t0: float, t1: float, fac: float = 1.0) -> np.ndarray:
        """Polygon of the torso between axis fractions ``t0`` and ``t1``, cross-sections scaled by ``fac``."""
        levels = self.LEVELS
        ts = np.concatenate([[t0], levels[(levels > t0) & (levels < t1)], [t1]])
        w = np.interp(ts, levels, self.widths) * fac
        d = np.interp(ts, levels, self.depths) * fac
        half = np.sqrt((w * self.width_proj) ** 2 + (d * self.depth_proj) ** 2)
        c = self.cam.xy(self.neck_base[None] + ts[:, None] * (self.pelvis - self.neck_base)[None])
        return np.concatenate([c + half[:, None] * self.normal, (c - half[:, None] * self.normal)[::-1]])

    def add(self, poly: np.ndarray, lip: int, ppp: int, mat: int) -> None:
        """Append a torso layer on top of the previous ones."""
        self.n_layers += 1
        self.prims.append(Prim(self.key + 1e-5 * self.n_layers, poly, lip, ppp, mat, G_TORSO))


@dataclass
class _PersonDrawing:
    """State shared by build_person's drawing steps: inputs, posed frame and the growing outputs."""
    cam: Camera
    shape: dict
    pose: dict
    outfit: dict
    mats: dict[str, int]
    frame: _BodyFrame
    torso: _TorsoStack
    prims: list[Prim]
    joints3: dict[str, np.ndarray]


def _draw_torso_layers(draw: _PersonDrawing) -> None:
    """Neck, trouser/skirt waist, top and (open or closed) coat on the torso stack."""
    cam, shape, outfit, mats, frame, torso = draw.cam, draw.shape, draw.outfit, draw.mats, draw.frame, draw.torso
    neck = capsule(cam.xy(frame.neck_base - 0.01 * frame.up), cam.xy(frame.neck_top + 0.02 * frame.up),
                   shape["neck_r"], shape["neck_r"] * 0.95)
    torso.add(neck, FACE, P_HEAD, mats["skin"])
    bottom, top = outfit["bottom"], outfit["top"]
    torso.add(torso.outline(0.62, 1.08), bottom, P_TORSO, mats["bottom"])
    torso.add(torso.outline(0.02, outfit["top_hem"] if top == UPPER else 1.0, 1.04), top, P_TORSO, mats["top"])
    if outfit["coat"]:
        torso.add(torso.outline(0.01, 1.08, 1.12), COAT, P_TORSO, mats["coat"])
        if outfit["coat_open"] and cam.zrow @ frame.forward > 0.45:  # open front: the inner top shows in a strip
            strip = torso.outline(0.04, min(outfit["top_hem"], 1.05), 1.0)
            c = strip.mean(0)
            across = (strip - c) @ torso.normal
            torso.add(strip - np.outer(across * (1.0 - outfit["coat_strip"]), torso.normal), top, P_TORSO, mats["top"])


def _leg_layers(outfit: dict, mats: dict[str, int]) -> list[tuple]:
    """Garment layers along a leg chain (trouser leg, or a skirt/dress over the thigh top; socks), by priority."""
    bottom = outfit["bottom"]
    layers = []
    if bottom in (PANTS, JUMPSUIT):
        looseness = outfit["wide"] if bottom == PANTS else 1.2
        layers.append((0.0, outfit["bottom_len"], bottom, None, mats["bottom"], looseness))
    else:
        layers.append((0.0, 0.12, bottom, None, mats["bottom"], 1.15))
    if outfit["socks"]:
        layers.append((1.0 - outfit["sock_len"], 1.01, SOCKS, None, mats["socks"], 1.08))
    return layers


def _draw_leg(draw: _PersonDrawing, i: int, side: float) -> float:
    """Pose and draw leg ``i`` (side +1 left, -1 right) with its foot; returns the thigh's depth key."""
    cam, shape, outfit, mats = draw.cam, draw.shape, draw.outfit, draw.mats
    a1, f1, a2, f2 = draw.pose["legs"][i]
    hip = draw.frame.pelvis + np.array([side * shape["hip_w"], 0.0, 0.0])
    knee = hip + shape["th"] * limb_dir(a1, f1, side)
    ankle = knee + shape["sh"] * limb_dir(a2, f2, side)
    name = "L" if side > 0 else "R"
    draw.joints3.update({f"{name}_Hip": hip, f"{name}_Knee": knee, f"{name}_Ankle": ankle})
    leg_lab = L_LEG if side > 0 else R_LEG
    g_th, g_sh = (G_LTH, G_LSH) if side > 0 else (G_RTH, G_RSH)
    bias = -0.12  # legs sit behind the torso
    _chain(cam, draw.prims, np.stack([hip, knee, ankle]), [shape["th_r"], shape["kn_r"], shape["an_r"]],
           _leg_layers(outfit, mats), leg_lab, mats["skin"], (P_ULEG, P_LLEG), (g_th, g_sh), bias)
    _draw_foot(draw, i, side, ankle, leg_lab, g_sh, bias)
    return float(0.5 * (cam.z(hip) + cam.z(knee))) + bias


def _draw_foot(draw: _PersonDrawing, i: int, side: float, ankle: np.ndarray, leg_lab: int, group: int,
               bias: float) -> None:
    """Shoe (or sock, or bare foot) as a capsule from heel to toe, turned out by the pose's toe angle."""
    cam, shape, outfit, mats = draw.cam, draw.shape, draw.outfit, draw.mats
    toe_out = math.radians(draw.pose["toe_out"][i])
    toe_dir = np.array([side * math.sin(toe_out), 0, math.cos(toe_out)])
    heel = ankle - 0.022 * toe_dir - np.array([0, 0.02, 0])
    toe = ankle + shape["foot"] * toe_dir - np.array([0, 0.03, 0])
    shoe_lab = (L_SHOE if side > 0 else R_SHOE) if outfit["shoes"] else (SOCKS if outfit["socks"] else leg_lab)
    shoe_mat = mats["shoes"] if outfit["shoes"] else (mats["socks"] if outfit["socks"] else mats["skin"])
    fac = 1.18 if outfit["shoes"] else 1.0
    draw.prims.append(Prim(float(cam.z(0.5 * (heel + toe))) + bias + 0.001,
                           capsule(cam.xy(heel), cam.xy(toe), 0.026 * fac, 0.02 * fac),
                           shoe_lab, P_LLEG, shoe_mat, group))


def _draw_tails(draw: _PersonDrawing, leg_keys: list[float]) -> None:
    """Skirt / dress skirt and coat tails, drawn over both thighs and under the arms."""
    outfit, mats = draw.outfit, draw.mats
    skirt_key = max(draw.torso.key + 1e-3, max(leg_keys) + 1e-3)
    if outfit["bottom"] in (SKIRT, DRESS):
        _draw_tail(draw, outfit["bottom_len"], outfit["bottom"], mats["bottom"], 1.08, skirt_key)
    if outfit["coat"]:
        _draw_tail(draw, outfit["coat_len"], COAT, mats["coat"], 1.15, skirt_key + 1e-4)


def _tail_hem_points(draw: _PersonDrawing, length: float) -> list[np.ndarray]:
    """3-D points on the left and right leg at ``length`` (fraction of the leg) below the hip."""
    shape = draw.shape
    ql = length * (shape["th"] + shape["sh"])
    hem = []
    for nm in ("L", "R"):
        hip, knee, ankle = draw.joints3[f"{nm}_Hip"], draw.joints3[f"{nm}_Knee"], draw.joints3[f"{nm}_Ankle"]
        hem.append(hip + (knee - hip) * min(ql / shape["th"], 1.0) if ql <= shape["th"]
                   else knee + (ankle - knee) * min((ql - shape["th"]) / shape["sh"], 1.0))
    return hem


def _draw_tail(draw: _PersonDrawing, length: float, lip: int, mat: int, flare: float, key: float) -> None:
    """A skirt-like quad from the hips down to the hem, split into PASCAL torso / upper / lower leg bands."""
    if length <= 0.05:
        return
    cam, torso, n2 = draw.cam, draw.torso, draw.torso.normal
    hem = _tail_hem_points(draw, length)
    top_poly = torso.outline(0.82, 0.83, flare * 0.98)
    tl, tr = top_poly[0], top_poly[-1]
    hc2 = cam.xy(0.5 * (hem[0] + hem[1]))
    spread = abs(float((cam.xy(hem[0]) - cam.xy(hem[1])) @ n2)) / 2 + draw.shape["th_r"] * 1.3
    half = max(spread, float(np.linalg.norm(tl - tr)) / 2 * (1 + 0.6 * length)) * flare
    quad = np.array([tl, tr, hc2 - half * n2, hc2 + half * n2])
    # PASCAL split: above the pelvis -> torso, pelvis..knees -> upper legs, below -> lower legs
    tc, ax = 0.5 * (tl + tr), hc2 - 0.5 * (tl + tr)
    den = max(float(ax @ ax), 1e-9)
    u_p = float(np.clip((cam.xy(draw.frame.pelvis) - tc) @ ax / den, 0, 1))
    knee2 = cam.xy(0.5 * (draw.joints3["L_Knee"] + draw.joints3["R_Knee"]))
    u_k = float(np.clip((knee2 - tc) @ ax / den, u_p, 1))
    for u0, u1, ppp in ((0.0, u_p, P_TORSO), (u_p, u_k, P_ULEG), (u_k, 1.0, P_LLEG)):
        if u1 - u0 > 1e-4:
            q = np.array([quad[0] + u0 * (quad[3] - quad[0]), quad[1] + u0 * (quad[2] - quad[1]),
                          quad[1] + u1 * (quad[2] - quad[1]), quad[0] + u1 * (quad[3] - quad[0])])
            draw.prims.append(Prim(key, q, lip, ppp, mat, G_TORSO))
            key += 1e-6


def _arm_layers(outfit: dict, mats: dict[str, int]) -> list[tuple]:
    """Garment layers along an arm chain (glove, coat sleeve, top sleeve), in priority order."""
    layers = []
    if outfit["gloves"]:
        layers.append((0.9, 1.01, GLOVE, None, mats["gloves"], 1.15))
    if outfit["coat"]:
        layers.append((0.0, 0.93, COAT, None, mats["coat"], 1.45))
    if outfit["sleeve"] > 0:
        layers.append((0.0, outfit["sleeve"], outfit["top"], None, mats["top"], 1.25))
    return layers


def _draw_arm(draw: _PersonDrawing, i: int, side: float) -> None:
    """Pose and draw arm ``i`` (side +1 left, -1 right) with its hand (bare or gloved)."""
    cam, shape, outfit, mats = draw.cam, draw.shape, draw.outfit, draw.mats
    a1, f1, a2, f2 = draw.pose["arms"][i]
    sho = draw.frame.neck_base + draw.frame.torso_rot @ np.array([side * shape["sh_w"], -0.03, 0.0])
    elb = sho + shape["ua"] * limb_dir(a1, f1, side)
    d2 = limb_dir(a2, f2, side)
    wri = elb + shape["fa"] * d2
    name = "L" if side > 0 else "R"
    draw.joints3.update({f"{name}_Shoulder": sho, f"{name}_Elbow": elb, f"{name}_Wrist": wri})
    arm_lab = L_ARM if side > 0 else R_ARM
    g_ua, g_fa = (G_LUA, G_LFA) if side > 0 else (G_RUA, G_RFA)
    _chain(cam, draw.prims, np.stack([sho, elb, wri]), [shape["ua_r"], shape["fa_r"] * 1.05, shape["fa_r"] * 0.8],
           _arm_layers(outfit, mats), arm_lab, mats["skin"], (P_UARM, P_LARM), (g_ua, g_fa), 0.0)
    tip = wri + shape["hand"] * d2
    draw.prims.append(Prim(float(cam.z(0.5 * (elb + wri))) + 1e-4, capsule(cam.xy(wri), cam.xy(tip), 0.019, 0.016),
                           GLOVE if outfit["gloves"] else arm_lab, P_LARM,
                           mats["gloves"] if outfit["gloves"] else mats["skin"], g_fa))


@dataclass
class _HeadView:
    """The head as the camera sees it: centre, rotation, depth, facing and ellipsoid semi-axes."""
    centre: np.ndarray
    rot: np.ndarray
    depth: float  # camera depth of the head centre
    facing: float  # > 0: face toward the camera
    w: float
    r: float
    d: float

    def at(self, x: float, y: float, z: float) -> np.ndarray:
        """Point given in the head's own frame, in person coordinates."""
        return self.centre + self.rot @ np.array([x, y, z])


def _head_view(draw: _PersonDrawing) -> _HeadView:
    """Head geometry shared by hair, face, sunglasses and hat."""
    frame, shape = draw.frame, draw.shape
    return _HeadView(frame.head_centre, frame.head_rot, float(draw.cam.z(frame.head_centre)),
                     float(draw.cam.zrow @ frame.head_rot[:, 2]), shape["head_w"], shape["head_r"], shape["head_d"])


def _add_head_ellipsoid(draw: _PersonDrawing, head: _HeadView, key: float, centre: np.ndarray,
                        axes: tuple[float, float, float], lip: int, mat: int) -> None:
    """Append one head-aligned ellipsoid (skull, face, hair, lens or hat part) at depth ``key``."""
    draw.prims.append(Prim(key, ellipsoid(draw.cam, centre, head.rot, axes), lip, P_HEAD, mat, G_HEAD))


def _draw_hair_and_face(draw: _PersonDrawing, head: _HeadView) -> None:
    """Long hair down the back, skull (hair or bare scalp), face, and the hair over the forehead.

    The skull is keyed behind the head centre and the face in front of it (``facing`` flips this in
    back views), so in a back view the hair covers the face.
    """
    cam, outfit, mats, frame = draw.cam, draw.outfit, draw.mats, draw.frame
    hw, hr, hd, hz, zf, at = head.w, head.r, head.d, head.depth, head.facing, head.at
    if outfit["long_hair"]:
        back = frame.neck_base - 0.07 * frame.forward
        draw.prims.append(Prim(float(cam.z(back)), capsule(cam.xy(at(0, 0.2 * hr, -0.3 * hd)),
                                                           cam.xy(back - outfit["hair_len"] * frame.up),
                                                           hw * 1.15, hw * 1.05),
                               HAIR, P_HEAD, mats["hair"], G_HEAD))
    if outfit["hair"]:
        _add_head_ellipsoid(draw, head, hz - 0.6 * hd * zf, at(0, 0.06 * hr, -0.12 * hd),
                            (hw * 1.07, hr * 1.05, hd * 0.98), HAIR, mats["hair"])
    else:
        _add_head_ellipsoid(draw, head, hz - 0.6 * hd * zf, at(0, 0.0, 0.0), (hw, hr, hd), FACE, mats["skin"])
    _add_head_ellipsoid(draw, head, hz + 0.6 * hd * zf, at(0, -0.1 * hr, 0.2 * hd),
                        (hw * 0.9, hr * 0.88, hd * 0.8), FACE, mats["skin"])
    hl = outfit["hairline"]
    top_h = (1.06 - hl) / 2
    if outfit["hair"]:
        _add_head_ellipsoid(draw, head, hz + 0.7 * hd * zf, at(0, hl * hr + top_h * hr, -0.04 * hd),
                            (hw * 1.06, top_h * hr, hd * 1.02), HAIR, mats["hair"])


def _draw_sunglasses(draw: _PersonDrawing, head: _HeadView) -> None:
    """One lens per eye, drawn only where that side of the face is turned toward the camera."""
    hw, hr, hd = head.w, head.r, head.d
    for sx in (-1.0, 1.0):
        nrm = head.rot @ np.array([0.35 * sx, 0, 1.0])
        if draw.cam.zrow @ nrm / np.linalg.norm(nrm) > 0.2:
            _add_head_ellipsoid(draw, head, head.depth + 0.6 * hd * head.facing + 1e-3,
                                head.at(0.38 * hw * sx, 0.12 * hr, 0.92 * hd), (0.3 * hw, 0.15 * hr, 0.06 * hd),
                                SUNGLASSES, draw.mats["glasses"])


def _draw_hat(draw: _PersonDrawing, head: _HeadView) -> None:
    """Brim or cap peak (if any) and the crown, in front of the whole head."""
    mat = draw.mats["hat"]
    hw, hr, hd, at = head.w, head.r, head.d, head.at
    hk = head.depth + hd + 0.01
    if draw.outfit["hat_kind"] == "brim":
        _add_head_ellipsoid(draw, head, hk, at(0, 0.35 * hr, 0.05 * hd), (hw * 1.7, 0.07 * hr, hd * 1.6), HAT, mat)
    elif draw.outfit["hat_kind"] == "cap":
        _add_head_ellipsoid(draw, head, hk, at(0, 0.38 * hr, 0.9 * hd), (hw * 0.8, 0.06 * hr, hd * 0.65), HAT, mat)
    _add_head_ellipsoid(draw, head, hk + 1e-4, at(0, 0.5 * hr, 0), (hw * 1.12, hr * 0.6, hd * 1.1), HAT, mat)


def _draw_scarf(draw: _PersonDrawing) -> None:
    """Scarf: a collar around the neck (top torso layer) and one hanging end in front of the chest."""
    cam, shape, frame, mat = draw.cam, draw.shape, draw.frame, draw.mats["scarf"]
    up_t, lat_t, fwd_t = frame.up, frame.lateral, frame.forward
    draw.torso.add(ellipsoid(cam, frame.neck_base + 0.005 * up_t, frame.torso_rot,
                             (shape["neck_r"] * 2.3, 0.028, shape["depth"] * 0.9)), SCARF, P_TORSO, mat)
    end0 = frame.neck_base + 0.04 * fwd_t + 0.02 * lat_t
    end1 = frame.pelvis + 0.55 * shape["torso_len"] * up_t + 0.075 * fwd_t + 0.03 * lat_t
    draw.prims.append(Prim(float(cam.z(0.5 * (end0 + end1))), capsule(cam.xy(end0), cam.xy(end1), 0.024, 0.026),
                           SCARF, P_TORSO, mat, G_TORSO))


_JOINT_ORDER = ("R_Ankle", "R_Knee", "R_Hip", "L_Hip", "L_Knee", "L_Ankle", "B_Pelvis", "B_Spine", "B_Neck", "B_Head",
                "R_Wrist", "R_Elbow", "R_Shoulder", "L_Shoulder", "L_Elbow", "L_Wrist")  # LIP order


def _projected_joints(draw: _PersonDrawing) -> np.ndarray:
    """The 16 joints in LIP order, projected to unit image coordinates (16, 2)."""
    frame = draw.frame
    draw.joints3.update({"B_Pelvis": frame.pelvis, "B_Spine": frame.spine + 0.15 * draw.shape["torso_len"] * frame.up,
                         "B_Neck": frame.neck_top, "B_Head": frame.head_top})
    return draw.cam.xy(np.stack([draw.joints3[k] for k in _JOINT_ORDER]))


def build_person(person: dict, cam: Camera, mat_of: dict[str, int]) -> tuple[list[Prim], np.ndarray]:
    """Posed, dressed person as depth-keyed primitives in unit coordinates (height ~1), plus joints (16, 2).

    ``mat_of`` maps material names (``person["colors"]`` keys) to the ids stored in the primitives.
    """
    shape, outfit = person["shape"], person["outfit"]
    frame = _body_frame(shape, person["pose"])
    prims: list[Prim] = []
    torso = _TorsoStack(cam, frame, shape, prims)
    draw = _PersonDrawing(cam, shape, person["pose"], outfit, mat_of, frame, torso, prims, {})
    _draw_torso_layers(draw)
    leg_keys = [_draw_leg(draw, i, side) for i, side in enumerate((1.0, -1.0))]
    _draw_tails(draw, leg_keys)
    for i, side in enumerate((1.0, -1.0)):
        _draw_arm(draw, i, side)
    head = _head_view(draw)
    _draw_hair_and_face(draw, head)
    if outfit["sunglasses"]:
        _draw_sunglasses(draw, head)
    if outfit["hat"]:
        _draw_hat(draw, head)
    if outfit["scarf"]:
        _draw_scarf(draw)
    return prims, _projected_joints(draw)
