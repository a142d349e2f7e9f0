#!/usr/bin/env python3
"""Procedural scenes for the bundled demo model (issue 10): images, captions and question/answer pairs.

    python3 tools/demo/scenes.py preview OUT.png        a 8x8 sheet of training scenes (seed 0)
    python3 tools/demo/scenes.py eval-set DIR           write the committed evaluation set (test/fixtures/demo/)

A scene is one or two flat-coloured shapes on a flat background, at RESOLUTION x RESOLUTION (64) pixels.

Rendering rules (the evaluator in test/demo/scenes.ts knows them, and only them):
  * shapes: circle, square, triangle (apex up, base at the bottom, as wide as tall) and star (5 points, apex up,
    inner radius STAR_INNER x the outer one), each drawn to fill a box of side `size` centred on (cx, cy); the star's
    bounding box is narrower/shorter than the box (its tips lie on the circle of radius size/2). Fill ratios of the
    bounding box: square 1.0, circle 0.785, triangle 0.5, star about 0.38.
  * colours: the object palette OBJECT_COLOURS, the background palette BACKGROUND_COLOURS (an object never has the
    background's colour); the RGB values are the palettes' exact values.
  * anti-aliasing: drawn at SUPERSAMPLE x the resolution with Pillow and reduced with a box filter, so an edge pixel
    is the exact area-weighted mix of the two colours (smooth edges are also what a small VAE reconstructs best).
  * sizes: small SIZES["small"] px, large SIZES["large"] px, +-SIZE_JITTER px.
  * positions (object centre): centre (32, 32), left (16, 32), right (48, 32), top (32, 16), bottom (32, 48), +-
    POSITION_JITTER px on each axis. Two objects take left+right or top+bottom, have different shapes and colours.
Captions come from a small grammar (caption()), questions and answers from qa_pairs(); answers are short
(a word or two) and end with <|im_end|> in training.

Held-out combinations (evaluation only): HELD_OUT_TRIPLES lists (shape, colour, background) triples that no
training scene contains (no object of that shape and colour on that background). Every pair of them (shape+colour,
colour+background, shape+background) still occurs in training, so the evaluation measures composition, not
unseen words. Evaluation scenes are drawn from the held-out triples with seeds disjoint from training
(EVAL_SEED_BASE and up; training draws scenes from random.Random(seed) streams below EVAL_SEED_BASE).
"""
import json
import math
import os
import random
import sys
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Tuple

from PIL import Image, ImageDraw

RESOLUTION = 64
SUPERSAMPLE = 4
SHAPES = ["circle", "square", "triangle", "star"]
OBJECT_COLOURS: Dict[str, Tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (240, 210, 40),
    "purple": (140, 60, 190),
    "orange": (245, 140, 30),
}
BACKGROUND_COLOURS: Dict[str, Tuple[int, int, int]] = {
    "white": (245, 245, 245),
    "black": (20, 20, 20),
    "gray": (128, 128, 128),
    "blue": (40, 80, 220),
    "green": (40, 170, 60),
}
SIZES = {"small": 18, "large": 30}
SIZE_JITTER = 2
POSITIONS = {"centre": (32, 32), "left": (16, 32), "right": (48, 32), "top": (32, 16), "bottom": (32, 48)}
POSITION_JITTER = 3
STAR_INNER = 0.45
# how a position is said in captions and answers
POSITION_PHRASES = {"centre": "in the centre", "left": "on the left", "right": "on the right", "top": "at the top",
                    "bottom": "at the bottom"}
NUMBER_WORDS = {1: "one", 2: "two"}

# (shape, colour, background) never shown in training; 2 per object colour, 3 per shape.
HELD_OUT_TRIPLES = [
    ("circle", "green", "white"), ("circle", "purple", "black"), ("circle", "orange", "gray"),
    ("square", "red", "green"), ("square", "yellow", "black"), ("square", "blue", "white"),
    ("triangle", "orange", "blue"), ("triangle", "purple", "white"), ("triangle", "green", "gray"),
    ("star", "yellow", "blue"), ("star", "red", "gray"), ("star", "blue", "black"),
]
EVAL_SEED_BASE = 1_000_000_000


@dataclass
class SceneObject:
    shape: str
    colour: str
    size: str        # "small" | "large"
    position: str    # a key of POSITIONS
    cx: float = 0.0  # the rendered centre and box side, after jitter
    cy: float = 0.0
    side: float = 0.0


@dataclass
class Scene:
    background: str
    objects: List[SceneObject] = field(default_factory=list)

    def to_dict(self):
        return {"background": self.background, "objects": [asdict(o) for o in self.objects]}


def is_held_out(scene: Scene) -> bool:
    return any((o.shape, o.colour, scene.background) in HELD_OUT_TRIPLES for o in scene.objects)


def _place(rng: random.Random, obj: SceneObject) -> SceneObject:
    x, y = POSITIONS[obj.position]
    obj.cx = x + rng.uniform(-POSITION_JITTER, POSITION_JITTER)
    obj.cy = y + rng.uniform(-POSITION_JITTER, POSITION_JITTER)
    obj.side = SIZES[obj.size] + rng.uniform(-SIZE_JITTER, SIZE_JITTER)
    return obj


def sample_scene(rng: random.Random, held_out: Optional[bool] = False, num_objects: Optional[int] = None,
                 fixed: Optional[Dict] = None) -> Scene:
    """A random scene. held_out False: no held-out triple; True: the first object is a held-out triple; None: any.
    fixed: {"shape", "colour", "background", "position", "size"} for the first object (any subset)."""
    fixed = dict(fixed or {})
    while True:
        n = num_objects or (1 if rng.random() < 0.6 else 2)
        if held_out:
            s, c, b = HELD_OUT_TRIPLES[rng.randrange(len(HELD_OUT_TRIPLES))]
            fixed.setdefault("shape", s), fixed.setdefault("colour", c), fixed.setdefault("background", b)
        background = fixed.get("background") or rng.choice(list(BACKGROUND_COLOURS))
        colours = [c for c in OBJECT_COLOURS if c != background]
        shapes = list(SHAPES)
        first_colour = fixed.get("colour") or rng.choice(colours)
        first_shape = fixed.get("shape") or rng.choice(shapes)
        if first_colour == background:
            continue
        if n == 1:
            positions = [fixed.get("position") or rng.choice(list(POSITIONS))]
        else:
            pair = rng.choice([("left", "right"), ("top", "bottom")])
            if fixed.get("position") in pair:
                positions = [fixed["position"], pair[1 - pair.index(fixed["position"])]]
            elif fixed.get("position"):
                continue
            else:
                positions = list(pair) if rng.random() < 0.5 else [pair[1], pair[0]]
        objects = [_place(rng, SceneObject(first_shape, first_colour, fixed.get("size") or rng.choice(list(SIZES)),
                                           positions[0]))]
        if n == 2:
            shape2 = rng.choice([s for s in shapes if s != first_shape])
            colour2 = rng.choice([c for c in colours if c != first_colour])
            objects.append(_place(rng, SceneObject(shape2, colour2, rng.choice(list(SIZES)), positions[1])))
        scene = Scene(background, objects)
        if held_out is False and is_held_out(scene):
            continue
        if held_out is True and len(objects) == 2 and (shape2, colour2, background) in HELD_OUT_TRIPLES:
            continue  # keep one held-out object per evaluation scene
        return scene


def _shape_polygon(shape, cx, cy, side):
    r = side / 2
    if shape == "triangle":
        return [(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    if shape == "star":
        points = []
        for i in range(10):
            radius = r if i % 2 == 0 else r * STAR_INNER
            angle = -math.pi / 2 + i * math.pi / 5
            points.append((cx + radius * math.cos(angle), cy + radius * math.sin(angle)))
        return points
    raise ValueError(shape)


def render(scene: Scene) -> Image.Image:
    """The scene as an RGB image of RESOLUTION x RESOLUTION (see the module docstring for the rules)."""
    k = SUPERSAMPLE
    big = Image.new("RGB", (RESOLUTION * k, RESOLUTION * k), BACKGROUND_COLOURS[scene.background])
    draw = ImageDraw.Draw(big)
    for o in scene.objects:
        colour = OBJECT_COLOURS[o.colour]
        cx, cy, side = o.cx * k, o.cy * k, o.side * k
        r = side / 2
        if o.shape == "circle":
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)
        elif o.shape == "square":
            draw.rectangle([cx - r, cy - r, cx + r, cy + r], fill=colour)
        else:
            draw.polygon(_shape_polygon(o.shape, cx, cy, side), fill=colour)
    return big.resize((RESOLUTION, RESOLUTION), Image.BOX)


# ---------------------------------------------------------------------------------------------------------------
# Language: captions and question/answer pairs
# ---------------------------------------------------------------------------------------------------------------

def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _object_phrase(o: SceneObject, with_size: bool, with_position: bool) -> str:
    words = ([o.size] if with_size else []) + [o.colour, o.shape]
    text = article(words[0]) + " " + " ".join(words)
    return text + (" " + POSITION_PHRASES[o.position] if with_position else "")


READING_ORDER = {"top": 0, "left": 1, "centre": 2, "right": 3, "bottom": 4}


def reading_order(objects: List[SceneObject]) -> List[SceneObject]:
    """Objects as answers list them: top before bottom, left before right (visible in the image, unlike the
    order the scene was sampled in)."""
    return sorted(objects, key=lambda o: READING_ORDER[o.position])


def caption(scene: Scene, rng: Optional[random.Random] = None, full: bool = False) -> str:
    """A caption from the grammar. full=True: every attribute (the canonical description); otherwise a random
    subset of size / position / background is mentioned (what is not mentioned is free in the image)."""
    if full:
        with_size = with_position = with_background = True
    else:
        with_size = rng.random() < 0.35
        with_position = rng.random() < 0.5 or len(scene.objects) == 2 and rng.random() < 0.5
        with_background = rng.random() < 0.85
    objects = reading_order(scene.objects) if full else scene.objects
    parts = [_object_phrase(o, with_size, with_position) for o in objects]
    text = " and ".join(parts)
    if with_background:
        text += ("," if with_position else "") + f" on a {scene.background} background"
    return text


def describe_answer(scene: Scene) -> str:
    return caption(scene, full=True)


def qa_pairs(scene: Scene) -> List[Tuple[str, str, str]]:
    """Every (kind, question, answer) the grammar asks about this scene. Spelling variants share a kind."""
    objs = reading_order(scene.objects)
    shapes = " and ".join(o.shape for o in objs)
    n = NUMBER_WORDS[len(objs)]
    pairs = [
        ("shape", "What shape is in the image?", shapes),
        ("shape", "What shapes are in the image?", shapes),
        ("count", "How many shapes are there?", n),
        ("count", "How many shapes are in the image?", n),
        ("background", "What colour is the background?", scene.background),
        ("background", "What color is the background?", scene.background),
        ("describe", "Describe the image.", describe_answer(scene)),
        ("describe", "What is in the image?", describe_answer(scene)),
    ]
    for o in objs:
        pairs += [
            ("colour", f"What colour is the {o.shape}?", o.colour),
            ("colour", f"What color is the {o.shape}?", o.colour),
            ("position", f"Where is the {o.shape}?", POSITION_PHRASES[o.position]),
        ]
        if len(objs) == 1:
            pairs += [("colour", "What colour is the shape?", o.colour),
                      ("colour", "What color is the shape?", o.colour)]
    return pairs


def normalise_answer(text: str) -> str:
    """How answers are compared (the evaluator does the same): lower case, trimmed, no final full stop."""
    return text.strip().lower().rstrip(".").strip()


# ---------------------------------------------------------------------------------------------------------------
# Text for the tokenizer (tools/demo/train.py trains the BPE on this)
# ---------------------------------------------------------------------------------------------------------------

def tokenizer_corpus(num_scenes=4000, seed=0) -> List[str]:
    """Captions, questions, answers and the chat-template pieces (as the SDK sends them), over random scenes
    (held-out ones included: their words are all known anyway)."""
    rng = random.Random(seed)
    lines = ["system\nYou are a helpful assistant.", "\n", "user\n", "assistant\n"]
    for _ in range(num_scenes):
        scene = sample_scene(rng, held_out=None)
        lines.append(caption(scene, rng))
        for _, q, a in qa_pairs(scene):
            lines.append(q)
            lines.append(a)
    return lines


# ---------------------------------------------------------------------------------------------------------------
# The committed evaluation set
# ---------------------------------------------------------------------------------------------------------------

EVAL_GENERATION_POSITIONS = [None, "left", "right", "top", "bottom", "centre"]


def evaluation_set(num_understanding_images=48):
    """Generation: for each held-out triple, the caption without position and with 2 positions (36 captions), with
    the intended attributes. Understanding: held-out scenes (first object a held-out triple) with their questions."""
    rng = random.Random(EVAL_SEED_BASE)
    generation = []
    for i, (shape, colour, background) in enumerate(HELD_OUT_TRIPLES):
        positions = [None] + [EVAL_GENERATION_POSITIONS[1 + (i + j) % 5] for j in (0, 2)]
        for position in positions:
            where = f" {POSITION_PHRASES[position]}," if position else ""
            generation.append({
                "caption": f"{article(colour)} {colour} {shape}{where} on a {background} background",
                "shape": shape, "colour": colour, "background": background, "position": position,
            })
    understanding = []
    for i in range(num_understanding_images):
        scene_rng = random.Random(EVAL_SEED_BASE + 1 + i)
        scene = sample_scene(scene_rng, held_out=True, num_objects=1 if i % 2 == 0 else 2)
        wanted = {"shape": "What shape is in the image?", "count": "How many shapes are there?",
                  "background": "What colour is the background?"}
        questions = [{"kind": k, "question": q, "answer": a} for k, q, a in qa_pairs(scene) if q in wanted.values()]
        for o in reading_order(scene.objects):
            questions.append({"kind": "colour", "question": f"What colour is the {o.shape}?", "answer": o.colour})
            questions.append({"kind": "position", "question": f"Where is the {o.shape}?",
                              "answer": POSITION_PHRASES[o.position]})
        understanding.append({"image": f"understanding/{i:03d}.png", "scene": scene.to_dict(), "questions": questions})
    return {
        "about": "Held-out evaluation set of the demo model, written by tools/demo/scenes.py eval-set",
        "resolution": RESOLUTION,
        "object_colours": OBJECT_COLOURS,
        "background_colours": BACKGROUND_COLOURS,
        "shapes": SHAPES,
        "held_out_triples": HELD_OUT_TRIPLES,
        "generation": generation,
        "understanding": understanding,
    }, rng


def write_eval_set(out_dir):
    data, _ = evaluation_set()
    os.makedirs(os.path.join(out_dir, "understanding"), exist_ok=True)
    for i, item in enumerate(data["understanding"]):
        scene_rng = random.Random(EVAL_SEED_BASE + 1 + i)
        scene = sample_scene(scene_rng, held_out=True, num_objects=1 if i % 2 == 0 else 2)
        render(scene).save(os.path.join(out_dir, item["image"]), optimize=True)
    with open(os.path.join(out_dir, "eval.json"), "w") as f:
        json.dump(data, f, indent=1)
        f.write("\n")
    print(f"wrote {len(data['generation'])} generation captions and {len(data['understanding'])} images to {out_dir}")


def preview(path, seed=0):
    rng = random.Random(seed)
    sheet = Image.new("RGB", (RESOLUTION * 8, RESOLUTION * 8))
    for i in range(64):
        scene = sample_scene(rng)
        sheet.paste(render(scene), ((i % 8) * RESOLUTION, (i // 8) * RESOLUTION))
        print(caption(scene, rng))
    sheet.save(path)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "preview":
        preview(sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == "eval-set":
        write_eval_set(sys.argv[2])
    else:
        sys.exit(__doc__)
