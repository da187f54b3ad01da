"""Constants that every part of the project shares, defined once."""

# Mean and standard deviation of the ImageNet weights, per RGB channel, on [0, 1] input.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# The evaluation centre crop: resize the short side to image_size / CROP_FRACTION (256 for
# 224), then cut out the central image_size square, as timm and the reference code evaluate.
CROP_FRACTION = 0.875

# The image files that image folders are read from (lower-case name endings).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp")

# Images at most this size (CIFAR's 32, up to 64) are "small": training pads and crops them
# instead of zooming, and evaluation takes them whole (no centre crop).
SMALL_IMAGE_SIZE = 64
