"""The background scene types: their words, their region phrases and how they look.

Why 36 flat types and not a few broad ones: in Visual Genome no single kind of place holds
more than a few percent of the images, and Gordo & Larlus's PCC@R (R up to 150 of 1,500
database images at demo size) needs the top R of a good ranking to span several places. With
7 types the largest held 15% of the database, a trained model filled its whole top 150 with
the query's type, and PCC only saw the shape differences inside it
(benchmarks/gordo2017/README.md, "The top R holds one scene type"). Each type here is about
3% of the images.

Each type has its own nouns and phrases, chosen so that few content words are shared between
types (some are, as in real captions: "sea", "water", "wall", "trees"), and its own look: one
of a handful of drawing recipes (``look``, see ``backgrounds.py``) with its own colours
(``palette``), so that the place is visible in the pixels as well as written in the captions.
"""

from __future__ import annotations

from dataclasses import dataclass

RGB = tuple[int, int, int]
Palette = tuple[RGB, ...]


@dataclass(frozen=True)
class SceneType:
    name: str
    synset: str
    words: tuple[str, ...]  # nouns, first = canonical: "beach", "seaside", ...
    phrases: tuple[str, ...]  # whole-image region phrases
    look: str  # drawing recipe in backgrounds.LOOKS
    palette: Palette  # the recipe's colours, in the order its docstring gives


def _t(
    name: str,
    synset: str,
    words: tuple[str, ...],
    phrases: tuple[str, ...],
    look: str,
    *palette: RGB,
) -> SceneType:
    """One table row (keeps the table below readable)."""
    return SceneType(name, synset, tuple(words), tuple(phrases), look, tuple(palette))


# fmt: off
SCENES: tuple[SceneType, ...] = (
    # sky: (top, bottom, cloud)
    _t("sky", "sky.n.01", ("sky", "cloudy sky", "heavens"),
       ("blue sky with clouds", "clouds in the sky", "a clear sky", "white clouds above"),
       "sky", (70, 130, 215), (170, 205, 240), (245, 245, 250)),
    _t("sunset", "sunset.n.01", ("sunset", "dusk", "twilight"),
       ("orange sunset glow", "the sun going down at dusk", "pink clouds at sunset",
        "a twilight horizon"),
       "sky", (235, 120, 60), (250, 190, 120), (225, 120, 160)),
    _t("night", "night.n.01", ("night", "midnight", "darkness"),
       ("a dark night", "stars at midnight", "the moonless darkness", "a starry night"),
       "sky", (15, 20, 55), (45, 40, 90), (90, 90, 120)),
    _t("storm", "storm.n.01", ("storm", "thunderstorm", "tempest"),
       ("grey storm overhead", "a brewing thunderstorm", "thunder and lightning",
        "heavy rain falling"),
       "sky", (70, 75, 85), (130, 135, 140), (50, 50, 60)),
    # coast: (water, ground)
    _t("beach", "beach.n.01", ("beach", "seaside", "shore"),
       ("sandy beach", "sand on the shore", "the sea behind the beach", "beach with sand"),
       "coast", (40, 120, 175), (220, 195, 145)),
    _t("lake", "lake.n.01", ("lake", "pond", "lakeside"),
       ("calm lake water", "reeds by the pond", "a quiet lakeside", "still water of a lake"),
       "coast", (30, 80, 70), (80, 140, 60)),
    _t("harbour", "harbor.n.01", ("harbour", "port", "dock"),
       ("concrete dock by the harbour", "boats moored in port", "a harbour quay",
        "the pier of a port"),
       "coast", (70, 90, 110), (150, 150, 145)),
    _t("lagoon", "lagoon.n.01", ("lagoon", "atoll", "tropical bay"),
       ("turquoise lagoon", "white coral beach of an atoll", "a tropical lagoon",
        "palm fringed bay"),
       "coast", (60, 200, 200), (240, 235, 220)),
    # grass: (ground, blades)
    _t("field", "field.n.01", ("field", "meadow", "grassland"),
       ("green grassy field", "grass in a meadow", "a field of grass", "open meadow"),
       "grass", (75, 145, 55), (150, 200, 90)),
    _t("wheat", "wheat.n.01", ("wheat", "cornfield", "farmland"),
       ("golden wheat", "ripe grain in a cornfield", "a harvest of wheat",
        "rows of crops on farmland"),
       "grass", (205, 165, 65), (240, 215, 130)),
    _t("lavender", "lavender.n.01", ("lavender", "heather", "blossoms"),
       ("purple lavender rows", "blooming heather", "a lavender farm", "fragrant purple blossoms"),
       "grass", (125, 95, 175), (185, 150, 225)),
    _t("savanna", "savanna.n.01", ("savanna", "prairie", "steppe"),
       ("dry savanna grass", "a dusty prairie", "an arid steppe", "brown dry bushes"),
       "grass", (175, 145, 90), (115, 90, 50)),
    # interior: (wall, floor)
    _t("room", "room.n.01", ("room", "living room", "interior"),
       ("wooden floor of a room", "wall of a room", "an indoor room", "floor boards indoors"),
       "interior", (215, 205, 185), (150, 100, 60)),
    _t("classroom", "classroom.n.01", ("classroom", "schoolroom", "lecture hall"),
       ("a chalkboard on the wall", "desks in a classroom", "a school lesson",
        "grey schoolroom floor"),
       "interior", (110, 155, 115), (165, 165, 165)),
    _t("gym", "gymnasium.n.02", ("gym", "gymnasium", "sports hall"),
       ("polished gym floor", "basketball court lines", "an indoor gymnasium",
        "sports hall bleachers"),
       "interior", (195, 195, 225), (215, 160, 85)),
    # tiles: (tile, grout)
    _t("bathroom", "bathroom.n.01", ("bathroom", "washroom", "restroom"),
       ("pale blue bathroom tiles", "a shower in the washroom", "a tiled restroom",
        "a bathtub and sink"),
       "tiles", (175, 210, 235), (240, 240, 240)),
    _t("kitchen", "kitchen.n.01", ("kitchen", "cookhouse", "galley"),
       ("white kitchen tiles", "a kitchen counter", "cooking in the galley",
        "stove and cupboards"),
       "tiles", (240, 240, 235), (60, 60, 60)),
    _t("subway", "subway_station.n.01", ("subway", "metro station", "underground"),
       ("cream tiles of a subway", "a metro platform", "the underground station",
        "train tunnel tiles"),
       "tiles", (235, 220, 175), (120, 105, 80)),
    # road: (surface, marking)
    _t("road", "road.n.01", ("road", "street", "highway"),
       ("grey asphalt road", "lane markings on the street", "a paved road", "street surface"),
       "road", (105, 105, 110), (235, 235, 225)),
    _t("racetrack", "racetrack.n.01", ("racetrack", "circuit", "speedway"),
       ("red running track", "lines of a racetrack", "a racing circuit", "the speedway oval"),
       "road", (175, 75, 55), (240, 240, 240)),
    _t("runway", "runway.n.04", ("runway", "airstrip", "tarmac"),
       ("airport runway", "markings on the airstrip", "a dark tarmac", "planes taking off"),
       "road", (50, 50, 55), (250, 235, 60)),
    _t("trail", "trail.n.02", ("trail", "dirt track", "footpath"),
       ("muddy trail", "tyre ruts in the dirt", "a country footpath", "an unpaved track"),
       "road", (140, 105, 70), (95, 70, 45)),
    # trunks: (canopy, trunk)
    _t("forest", "forest.n.01", ("forest", "woods", "trees"),
       ("dark forest with trees", "tree trunks in the woods", "a dense forest", "woodland"),
       "trunks", (35, 80, 40), (85, 55, 30)),
    _t("autumn", "autumn.n.01", ("autumn", "fall foliage", "maple grove"),
       ("orange autumn leaves", "fallen leaves", "red and orange foliage",
        "maples in the fall"),
       "trunks", (205, 110, 40), (70, 45, 25)),
    _t("birches", "birch.n.01", ("birches", "birch grove", "aspens"),
       ("white birch trunks", "a grove of birches", "pale aspen bark", "slender white birches"),
       "trunks", (140, 175, 105), (235, 235, 230)),
    _t("bamboo", "bamboo.n.01", ("bamboo", "bamboo grove", "canes"),
       ("green bamboo stalks", "a bamboo thicket", "tall bamboo canes", "jointed bamboo stems"),
       "trunks", (110, 175, 70), (205, 210, 95)),
    # horizon: (upper band, ground)
    _t("snow", "snow.n.01", ("snow", "snowfield", "winter"),
       ("white snow on the ground", "a snowy landscape", "snow covered ground", "winter snow"),
       "horizon", (175, 180, 190), (235, 238, 245)),
    _t("desert", "desert.n.01", ("desert", "wasteland", "badlands"),
       ("hot desert", "dry cracked ground", "a barren wasteland", "orange desert rocks"),
       "horizon", (150, 190, 230), (225, 165, 95)),
    _t("glacier", "glacier.n.01", ("glacier", "ice sheet", "icefield"),
       ("blue glacier ice", "a frozen ice sheet", "crevasses in the glacier", "polar ice"),
       "horizon", (215, 230, 245), (145, 200, 230)),
    _t("volcano", "volcano.n.01", ("volcano", "crater", "ash plain"),
       ("black volcanic rock", "ash from the volcano", "a smoking crater", "dark basalt"),
       "horizon", (90, 75, 75), (35, 30, 30)),
    # waves: (trough, crest)
    _t("ocean", "ocean.n.01", ("ocean", "open sea", "waves"),
       ("deep blue ocean", "waves on the open sea", "ocean swell", "rolling waves"),
       "waves", (20, 55, 130), (65, 130, 200)),
    _t("pool", "swimming_pool.n.01", ("pool", "swimming pool", "lido"),
       ("clear pool water", "ripples in the swimming pool", "a public lido", "the pool lanes"),
       "waves", (55, 185, 215), (160, 230, 245)),
    _t("lava", "lava.n.01", ("lava", "magma", "lava flow"),
       ("glowing red lava", "molten magma", "a river of lava", "hot lava flow"),
       "waves", (185, 35, 10), (250, 145, 20)),
    _t("dunes", "dune.n.01", ("dunes", "dune sea", "erg"),
       ("rippled dunes", "wind-blown ridges", "a dune sea", "golden dune crests"),
       "waves", (200, 150, 80), (235, 200, 130)),
    # bricks: (brick, mortar)
    _t("bricks", "brick.n.01", ("bricks", "brick wall", "brickwork"),
       ("red brick wall", "rows of bricks", "old brickwork", "mortar between bricks"),
       "bricks", (165, 65, 45), (205, 200, 190)),
    _t("stonework", "stone_wall.n.01", ("stonework", "stone wall", "rampart"),
       ("grey stone blocks", "an old stone wall", "a castle rampart", "weathered stonework"),
       "bricks", (135, 135, 130), (75, 75, 72)),
)
# fmt: on

SCENE_BY_NAME = {s.name: s for s in SCENES}
