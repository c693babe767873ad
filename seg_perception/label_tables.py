"""Data tables of the public label sets in :mod:`seg_perception.labels` (data only, no logic).

Each row is ``(name, (r, g, b), thing)``; a row's position is its train id. Class names and
colours are facts of the public datasets; the sources are named above each table.
"""

from typing import Tuple

Row = Tuple[str, Tuple[int, int, int], bool]

#: PASCAL VOC 2012 segmentation classes (background + 20 objects), the order of the VOC
#: devkit's ``classes`` list and of torchvision's ``_VOC_CATEGORIES`` (its COCO-with-VOC-labels
#: segmentation weights). Colours come from the VOC colour map, computed in ``labels.voc``.
VOC_NAMES: Tuple[str, ...] = (
    'background', 'aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat',
    'chair', 'cow', 'diningtable', 'dog', 'horse', 'motorbike', 'person', 'pottedplant',
    'sheep', 'sofa', 'train', 'tvmonitor',
)

#: CamVid's 11 classes as trained by SegNet (SegNet-Tutorial) and davidtvs/PyTorch-ENet
#: (``data/camvid.py`` ``color_encoding``, less ``road_marking``, which ``main.py`` removes
#: because the annotations merge it into road). Things: car, pedestrian, bicyclist.
CAMVID: Tuple[Row, ...] = (
    ('sky', (128, 128, 128), False),
    ('building', (128, 0, 0), False),
    ('pole', (192, 192, 128), False),
    ('road', (128, 64, 128), False),
    ('pavement', (60, 40, 222), False),
    ('tree', (128, 128, 0), False),
    ('sign_symbol', (192, 128, 128), False),
    ('fence', (64, 64, 128), False),
    ('car', (64, 0, 128), True),
    ('pedestrian', (64, 64, 0), True),
    ('bicyclist', (0, 128, 192), True),
)

#: Index of CamVid's void class (``unlabelled``, black) in the annotations and in the logits
#: of PyTorch-ENet's CamVid model (12 channels); ``labels.camvid`` maps it to the void id.
CAMVID_UNLABELLED_INDEX = 11

#: The 150 ADE20K SceneParsing (MIT Scene Parsing Benchmark, SceneParse150) classes in the
#: benchmark's order (index 0 = wall; the label files store index + 1, 0 = other/void).
#: Names: the short names of mmsegmentation ``mmseg/datasets/ade.py`` (the first synonym of
#: CSAILVision ``object150_info.csv``). Colours: the standard 150-colour palette of that
#: mmsegmentation file, identical to ``ADE20K_150_CATEGORIES`` of facebookresearch/Mask2Former.
#: Thing flags: the 100 classes with instance annotations in the ADE20K panoptic benchmark
#: (``isthing`` in Mask2Former's ADE20K panoptic registration); the other 50 are stuff.
ADE20K: Tuple[Row, ...] = (
    ('wall', (120, 120, 120), False),               # 0
    ('building', (180, 120, 120), False),
    ('sky', (6, 230, 230), False),
    ('floor', (80, 50, 50), False),
    ('tree', (4, 200, 3), False),
    ('ceiling', (120, 120, 80), False),
    ('road', (140, 140, 140), False),
    ('bed', (204, 5, 255), True),
    ('windowpane', (230, 230, 230), True),
    ('grass', (4, 250, 7), False),
    ('cabinet', (224, 5, 255), True),               # 10
    ('sidewalk', (235, 255, 7), False),
    ('person', (150, 5, 61), True),
    ('earth', (120, 120, 70), False),
    ('door', (8, 255, 51), True),
    ('table', (255, 6, 82), True),
    ('mountain', (143, 255, 140), False),
    ('plant', (204, 255, 4), False),
    ('curtain', (255, 51, 7), True),
    ('chair', (204, 70, 3), True),
    ('car', (0, 102, 200), True),                   # 20
    ('water', (61, 230, 250), False),
    ('painting', (255, 6, 51), True),
    ('sofa', (11, 102, 255), True),
    ('shelf', (255, 7, 71), True),
    ('house', (255, 9, 224), False),
    ('sea', (9, 7, 230), False),
    ('mirror', (220, 220, 220), True),
    ('rug', (255, 9, 92), False),
    ('field', (112, 9, 255), False),
    ('armchair', (8, 255, 214), True),              # 30
    ('seat', (7, 255, 224), True),
    ('fence', (255, 184, 6), True),
    ('desk', (10, 255, 71), True),
    ('rock', (255, 41, 10), False),
    ('wardrobe', (7, 255, 255), True),
    ('lamp', (224, 255, 8), True),
    ('bathtub', (102, 8, 255), True),
    ('railing', (255, 61, 6), True),
    ('cushion', (255, 194, 7), True),
    ('base', (255, 122, 8), False),                 # 40
    ('box', (0, 255, 20), True),
    ('column', (255, 8, 41), True),
    ('signboard', (255, 5, 153), True),
    ('chest of drawers', (6, 51, 255), True),
    ('counter', (235, 12, 255), True),
    ('sand', (160, 150, 20), False),
    ('sink', (0, 163, 255), True),
    ('skyscraper', (140, 140, 140), False),
    ('fireplace', (250, 10, 15), True),
    ('refrigerator', (20, 255, 0), True),           # 50
    ('grandstand', (31, 255, 0), False),
    ('path', (255, 31, 0), False),
    ('stairs', (255, 224, 0), True),
    ('runway', (153, 255, 0), False),
    ('case', (0, 0, 255), True),
    ('pool table', (255, 71, 0), True),
    ('pillow', (0, 235, 255), True),
    ('screen door', (0, 173, 255), True),
    ('stairway', (31, 0, 255), False),
    ('river', (11, 200, 200), False),               # 60
    ('bridge', (255, 82, 0), False),
    ('bookcase', (0, 255, 245), True),
    ('blind', (0, 61, 255), False),
    ('coffee table', (0, 255, 112), True),
    ('toilet', (0, 255, 133), True),
    ('flower', (255, 0, 0), True),
    ('book', (255, 163, 0), True),
    ('hill', (255, 102, 0), False),
    ('bench', (194, 255, 0), True),
    ('countertop', (0, 143, 255), True),            # 70
    ('stove', (51, 255, 0), True),
    ('palm', (0, 82, 255), True),
    ('kitchen island', (0, 255, 41), True),
    ('computer', (0, 255, 173), True),
    ('swivel chair', (10, 0, 255), True),
    ('boat', (173, 255, 0), True),
    ('bar', (0, 255, 153), False),
    ('arcade machine', (255, 92, 0), True),
    ('hovel', (255, 0, 255), False),
    ('bus', (255, 0, 245), True),                   # 80
    ('towel', (255, 0, 102), True),
    ('light', (255, 173, 0), True),
    ('truck', (255, 0, 20), True),
    ('tower', (255, 184, 184), False),
    ('chandelier', (0, 31, 255), True),
    ('awning', (0, 255, 61), True),
    ('streetlight', (0, 71, 255), True),
    ('booth', (255, 0, 204), True),
    ('television receiver', (0, 255, 194), True),
    ('airplane', (0, 255, 82), True),               # 90
    ('dirt track', (0, 10, 255), False),
    ('apparel', (0, 112, 255), True),
    ('pole', (51, 0, 255), True),
    ('land', (0, 194, 255), False),
    ('bannister', (0, 122, 255), True),
    ('escalator', (0, 255, 163), False),
    ('ottoman', (255, 153, 0), True),
    ('bottle', (0, 255, 10), True),
    ('buffet', (255, 112, 0), False),
    ('poster', (143, 255, 0), False),               # 100
    ('stage', (82, 0, 255), False),
    ('van', (163, 255, 0), True),
    ('ship', (255, 235, 0), True),
    ('fountain', (8, 184, 170), True),
    ('conveyer belt', (133, 0, 255), False),
    ('canopy', (0, 255, 92), False),
    ('washer', (184, 0, 255), True),
    ('plaything', (255, 0, 31), True),
    ('swimming pool', (0, 184, 255), False),
    ('stool', (0, 214, 255), True),                 # 110
    ('barrel', (255, 0, 112), True),
    ('basket', (92, 255, 0), True),
    ('waterfall', (0, 224, 255), False),
    ('tent', (112, 224, 255), False),
    ('bag', (70, 184, 160), True),
    ('minibike', (163, 0, 255), True),
    ('cradle', (153, 0, 255), False),
    ('oven', (71, 255, 0), True),
    ('ball', (255, 0, 163), True),
    ('food', (255, 204, 0), True),                  # 120
    ('step', (255, 0, 143), True),
    ('tank', (0, 255, 235), False),
    ('trade name', (133, 255, 0), True),
    ('microwave', (255, 0, 235), True),
    ('pot', (245, 0, 255), True),
    ('animal', (255, 0, 122), True),
    ('bicycle', (255, 245, 0), True),
    ('lake', (10, 190, 212), False),
    ('dishwasher', (214, 255, 0), True),
    ('screen', (0, 204, 255), True),                # 130
    ('blanket', (20, 0, 255), False),
    ('sculpture', (255, 255, 0), True),
    ('hood', (0, 153, 255), True),
    ('sconce', (0, 41, 255), True),
    ('vase', (0, 255, 204), True),
    ('traffic light', (41, 0, 255), True),
    ('tray', (41, 255, 0), True),
    ('ashcan', (173, 0, 255), True),
    ('fan', (0, 245, 255), True),
    ('pier', (71, 0, 255), False),                  # 140
    ('crt screen', (122, 0, 255), False),
    ('plate', (0, 255, 184), True),
    ('monitor', (0, 92, 255), True),
    ('bulletin board', (184, 255, 0), True),
    ('shower', (0, 133, 255), False),
    ('radiator', (255, 214, 0), True),
    ('glass', (25, 194, 194), True),
    ('clock', (102, 255, 0), True),
    ('flag', (92, 0, 255), True),
)
