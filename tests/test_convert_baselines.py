"""Converting the baselines' checkpoints: torchvision ResNet34/50 and RegNetX, timm RegNetX.

Each reference model is built with random weights and random BatchNorm statistics, saved as
its release is (a plain state dict), converted through the user's path (file -> converter
chosen from the model and the tensor names -> .weights.h5) and compared on real images.
"""

import numpy as np
import pytest
from torch_reference import (
    assert_parity,
    import_torch_timm,
    randomize_batchnorm,
    reference_images,
    torch_outputs,
)

from ghostnet_keras import convert_weights

# registry name -> (library, constructor, converter the file must be routed to)
BASELINES = {
    "resnet34": ("torchvision", "resnet34", "torchvision_resnet"),
    "resnet50": ("torchvision", "resnet50", "torchvision_resnet"),
    "regnetx_032": ("torchvision", "regnet_x_3_2gf", "torchvision_regnet"),
    "regnetx_040": ("timm", "regnetx_040", "timm_regnet"),
}


def reference_model(name, seed=0, images=None):
    """The library's model with random weights and random BatchNorm statistics; with
    ``images``, its classifier scaled so that the largest logit on them is 10 (random
    statistics let activations grow with depth; the tests compare logits absolutely)."""
    torch, timm = import_torch_timm()
    library, constructor, _ = BASELINES[name]
    torch.manual_seed(seed)
    if library == "timm":
        model = timm.create_model(constructor, pretrained=False)
    else:
        import torchvision

        model = getattr(torchvision.models, constructor)(weights=None)
    model = randomize_batchnorm(model.eval(), seed + 1)
    if images is not None:
        head = model.get_classifier() if hasattr(model, "get_classifier") else model.fc
        with torch.no_grad():
            factor = 10.0 / np.abs(torch_outputs(model, images)).max()
            head.weight.mul_(factor)
            head.bias.mul_(factor)
    return model


@pytest.fixture(scope="module")
def images(imagenette_dir):
    return reference_images(imagenette_dir, n_random=0)[[0, 5]]  # 2 real images, 224x224


# resnet34, regnetx_032 (torchvision) and regnetx_040 (timm) are converted the same way
# through weights="imagenet" in tests/test_pretrained.py (one download path per converter).
@pytest.mark.parametrize("name", ["resnet50"])
def test_parity(name, images, tmp_path, capsys):
    torch, _ = import_torch_timm()
    reference = reference_model(name, images=images)
    checkpoint = tmp_path / f"{name}.pth"
    torch.save(reference.state_dict(), checkpoint)
    output = tmp_path / f"{name}.weights.h5"
    model = convert_weights.convert_checkpoint(checkpoint, name, output, log=print)
    assert output.exists()
    assert BASELINES[name][2].split("_")[0] in capsys.readouterr().out  # the routed converter
    import keras

    logits = keras.Model(model.input, model.get_layer("classifier").output)
    expected = torch_outputs(reference, images)
    actual = logits(images, training=False).numpy()
    assert np.abs(expected).max() == pytest.approx(10.0, rel=1e-3)
    diff = assert_parity(expected, actual)
    print(f"{name}: max |logit difference| {diff:.2e}")


def test_mismatch_names_the_tensors_and_the_model(tmp_path):
    torch, _ = import_torch_timm()
    checkpoint = tmp_path / "r34.pth"
    torch.save(reference_model("resnet34").state_dict(), checkpoint)
    with pytest.raises(ValueError) as info:
        convert_weights.convert_checkpoint(checkpoint, "resnet50", tmp_path / "x.weights.h5")
    message = str(info.value)
    assert "does not match resnet50" in message and "missing layer1.0.conv3.weight" in message
    assert "looks like resnet34: pass --model=resnet34" in message
    assert message.count("\n") <= 3 * convert_weights.MAX_REPORTED + 2
