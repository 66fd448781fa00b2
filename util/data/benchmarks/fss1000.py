"""FSS-1000"s fixed test split as a cross-domain target: 240 everyday-object classes, every
image once as query (10 per class), as the cross-domain benchmark of "Cross-Domain Few-Shot
Semantic Segmentation" (PATNet, ECCV 2022) tests it (docs/cross_domain.md)."""
from __future__ import annotations

from util.data.benchmarks import Benchmark, Protocol

NAMES = (
    "abe's_flyingfish", "accordion", "american_alligator", "american_chamelon", "andean_condor", "anise",
    "apple_icon", "arch_bridge", "arrow", "astronaut", "australian_terrier", "bamboo_dragonfly", "bamboo_slip",
    "banana_boat", "barber_shaver", "bat", "bath_ball", "beet_root", "bell_pepper", "big_ben", "black_bear",
    "bloodhound", "boxing_gloves", "breast_pump", "broom", "bucket", "bulb", "burj_al", "bus", "bustard",
    "cabbage_butterfly", "cablestayed_bridge", "cantilever_bridge", "canton_tower", "captain_america_shield",
    "carriage", "cathedrale_paris", "cd", "chalk_brush", "chandelier", "charge_battery", "chess_king",
    "chess_knight", "chess_queen", "chicken", "chicken_leg", "chiffon_cake", "chinese_knot", "church", "cicada",
    "clam", "clearwing_flyingfish", "cloud", "coffee_mug", "coin", "combination_lock", "condor", "cricket",
    "crt_screen", "cuckoo", "curlew", "dart_target", "delta_wing", "diver", "doormat", "doublebus", "doughnut",
    "downy_pitch", "drilling_platform", "dwarf_beans", "eagle", "earphone1", "earphone2", "echidna", "egg",
    "electronic_stove", "english_foxhound", "f1_racing", "fan", "feather_clothes", "fennel_bulb", "ferrari911",
    "fish", "fish_eagle", "flamingo", "fly", "flying_frog", "flying_geckos", "flying_snakes", "flying_squirrel",
    "fox", "french_fries", "ganeva_chair", "glider_flyingfish", "goblet", "golden_plover", "goldfinch",
    "groenendael", "guitar", "gym_ball", "haddock", "hair_razor", "hang_glider", "harmonica", "hawk",
    "helicopter", "hotel_slipper", "hover_board", "iguana", "indri", "ipad", "iphone", "iron_man",
    "jet_aircraft", "kart", "key", "knife", "kunai", "lapwing", "leaf_egg", "leaf_fan", "leafhopper",
    "leather_shoes", "leggings", "lemur_catta", "letter_opener", "little_blue_heron", "lotus", "magpie_bird",
    "manatee", "marimba", "may_bug", "meatloaf", "microscope", "minicooper", "missile", "mite_predator",
    "mitten", "moist_proof_pad", "monkey", "moon", "motorbike", "net_surface_shoes", "nintendo_3ds",
    "nintendo_gba", "nintendo_sp", "nintendo_switch", "nintendo_wiiu", "ocarina", "oiltank_car", "onion",
    "oriole", "osprey", "oyster", "paper_plane", "parthenon", "pencil_sharpener1", "peregine_falcon",
    "pheasant", "phonograph", "photocopier", "pidan", "pizza", "plastic_bag", "poached_egg", "polo_shirt",
    "porcupine", "potato_chips", "pspgo", "pteropus", "pumpkin_pie", "pyramid", "pyramid_cube", "pyraminx",
    "quail", "quail_egg", "rally_car", "reel", "reflex_camera", "rice_cooker", "rocking_chair", "rubber_eraser",
    "rubick_cube", "rugby_ball", "ruler", "samarra_mosque", "santa_sledge", "screw", "seagull", "sealion",
    "shower_curtain", "shumai", "siamang", "sled", "snow_leopard", "snowman", "snowplow", "soap",
    "soymilk_machine", "speedboat", "spiderman", "spinach", "stealth_aircraft", "steering_wheel", "stingray",
    "stone_lion", "stonechat", "stork", "strawberry", "sulphur_butterfly", "sushi", "swan",
    "sydney_opera_house", "taj_mahal", "tiltrotor", "toaster", "tower_pisa", "transport_helicopter", "tredmill",
    "truss_bridge", "tunnel", "twin_tower", "vacuum_cup", "villa_savoye", "vinyl", "wagtail",
    "wandering_albatross", "warehouse_tray", "warplane", "wasp", "water_buffalo", "water_heater", "wheelchair",
    "whippet", "white_wolf", "wig", "windmill", "window_screen", "wooden_boat", "wooden_spoon",
)

BENCHMARK = Benchmark(
    name="fss1000", title="FSS-1000", class_names=NAMES, folds=None,
    prepare="python -m util.prepare fss1000 --src fewshot_data --out data/fss1000",
    protocol=Protocol(episodes=2400, seeds=1, image_size=401, min_class_pixels=0),  # every image, once
)
