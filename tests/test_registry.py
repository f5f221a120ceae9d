"""Tests for detforge.registry: Registry, register_module and build_module."""

from __future__ import annotations

import pytest

from detforge import registry as reg_mod
from detforge.errors import (
    ConfigError,
    ConfigKeyError,
    ConfigTypeError,
    UnexpectedKeyError,
    UnknownTypeError,
)
from detforge.registry import Registry, build_module

# --------------------------------------------------------------------------- register_module


def test_register_module_decorator_without_name():
    reg = Registry("toys")

    @reg.register_module()
    class Ball:
        pass

    assert reg.get("Ball") is Ball
    assert "Ball" in reg
    assert len(reg) == 1


def test_register_module_decorator_with_name():
    reg = Registry("toys")

    @reg.register_module(name="Sphere")
    class Ball:
        pass

    assert reg.get("Sphere") is Ball
    assert reg.get("Ball") is None
    assert reg.names() == ["Sphere"]


def test_register_module_with_list_of_aliases():
    reg = Registry("toys")

    @reg.register_module(name=["Ball", "Sphere", "Orb"])
    class Ball:
        pass

    assert reg.names() == ["Ball", "Orb", "Sphere"]
    assert all(reg.get(n) is Ball for n in ("Ball", "Sphere", "Orb"))


def test_register_module_as_call_with_module():
    reg = Registry("toys")

    class Ball:
        pass

    returned = reg.register_module(module=Ball)
    assert returned is Ball
    assert reg.get("Ball") is Ball

    reg.register_module(name="Other", module=Ball)
    assert reg.get("Other") is Ball


def test_register_module_bare_decorator():
    reg = Registry("toys")

    @reg.register_module
    class Ball:
        pass

    assert Ball.__name__ == "Ball"  # the decorator returned the class itself
    assert reg.get("Ball") is Ball


def test_register_function():
    reg = Registry("fns")

    @reg.register_module()
    def make_ball(size=1):
        return ("ball", size)

    assert reg.get("make_ball") is make_ball
    assert build_module(dict(type="make_ball", size=4), reg) == ("ball", 4)


def test_duplicate_name_raises_config_key_error():
    reg = Registry("toys")

    @reg.register_module()
    class Ball:
        pass

    class Ball2:
        pass

    with pytest.raises(ConfigKeyError, match="Ball") as info:
        reg.register_module(name="Ball", module=Ball2)
    assert isinstance(info.value, KeyError)
    assert reg.get("Ball") is Ball  # unchanged


def test_duplicate_alias_in_list_raises():
    reg = Registry("toys")

    @reg.register_module(name="Orb")
    class Ball:
        pass

    class Other:
        pass

    with pytest.raises(KeyError, match="Orb"):
        reg.register_module(name=["Fresh", "Orb"], module=Other)
    assert reg.get("Orb") is Ball


def test_duplicate_name_with_force_replaces():
    reg = Registry("toys")

    @reg.register_module()
    class Ball:
        pass

    @reg.register_module(name="Ball", force=True)
    class NewBall:
        pass

    assert reg.get("Ball") is NewBall
    reg.register_module(name="Ball", force=True, module=Ball)
    assert reg.get("Ball") is Ball


@pytest.mark.parametrize("obj", [42, "Ball", object(), [1, 2]], ids=repr)
def test_registering_a_non_class_raises(obj):
    reg = Registry("toys")
    with pytest.raises(ConfigTypeError):
        reg.register_module(module=obj)
    with pytest.raises(TypeError):
        reg.register_module()(obj)
    assert len(reg) == 0


def test_register_module_bad_name_type_raises():
    reg = Registry("toys")
    with pytest.raises(ConfigTypeError, match="name must be"):
        reg.register_module(name=3)
    assert len(reg) == 0


def test_registry_introspection():
    reg = Registry("toys")

    @reg.register_module()
    class B:
        pass

    @reg.register_module()
    class A:
        pass

    assert reg.name == "toys"
    assert list(reg) == ["A", "B"]
    table = reg.module_dict
    assert table == {"A": A, "B": B}
    table.clear()
    assert len(reg) == 2  # module_dict is a copy
    assert "toys" in repr(reg)
    assert reg.get("C") is None


# --------------------------------------------------------------------------- build_module


def _toy_registry():
    reg = Registry("toys")

    @reg.register_module()
    class Ball:
        def __init__(self, size, color="red"):
            self.size = size
            self.color = color

    return reg, Ball


def test_build_with_type_string():
    reg, ball_cls = _toy_registry()
    obj = build_module(dict(type="Ball", size=3), reg)
    assert type(obj) is ball_cls
    assert (obj.size, obj.color) == (3, "red")


def test_build_with_type_class():
    reg = Registry("empty")

    class Ball:
        def __init__(self, size):
            self.size = size

    obj = build_module(dict(type=Ball, size=5), reg)
    assert type(obj) is Ball
    assert obj.size == 5


def test_registry_build_shorthand():
    reg, ball_cls = _toy_registry()
    obj = reg.build(dict(type="Ball", size=2), default_args=dict(color="blue"))
    assert isinstance(obj, ball_cls)
    assert obj.color == "blue"


def test_build_does_not_mutate_cfg():
    reg, _ = _toy_registry()
    cfg = dict(type="Ball", size=3)
    build_module(cfg, reg, default_args=dict(color="blue"))
    assert cfg == dict(type="Ball", size=3)


@pytest.mark.parametrize(
    ("cfg", "default_args", "expected"),
    [
        (dict(type="Ball", size=1), dict(color="blue"), (1, "blue")),
        (dict(type="Ball", size=1, color="green"), dict(color="blue"), (1, "green")),
        (dict(type="Ball"), dict(size=7), (7, "red")),
        (dict(type="Ball", size=2), dict(size=9, color="blue"), (2, "blue")),
        (dict(size=4), dict(type="Ball"), (4, "red")),
    ],
)
def test_default_args_only_fill_missing_keys(cfg, default_args, expected):
    reg, _ = _toy_registry()
    obj = build_module(cfg, reg, default_args)
    assert (obj.size, obj.color) == expected


def _fpn_registry():
    reg = Registry("models")

    @reg.register_module()
    class FPN:
        def __init__(
            self,
            in_channels,
            out_channels,
            num_outs,
            start_level=0,
            end_level=-1,
            add_extra_convs=False,
        ):
            self.in_channels = in_channels

    @reg.register_module()
    class ResNet:
        def __init__(self, depth):
            self.depth = depth

    return reg


def test_unknown_type_names_closest_and_path():
    reg = _fpn_registry()
    cfg = dict(type="FPNN", in_channels=[256], out_channels=256, num_outs=5)
    with pytest.raises(UnknownTypeError) as info:
        build_module(cfg, reg, path="model.neck")
    message = str(info.value)
    assert "'FPN'" in message
    assert "FPNN" in message
    assert "model.neck" in message
    assert isinstance(info.value, KeyError)
    assert isinstance(info.value, ConfigError)


def test_unknown_type_without_close_match_lists_names():
    reg = _fpn_registry()
    with pytest.raises(UnknownTypeError) as info:
        build_module(dict(type="Zzzzzz"), reg, path="model.backbone")
    assert "FPN" in str(info.value)
    assert "ResNet" in str(info.value)


def test_unknown_type_in_empty_registry():
    reg = Registry("empty")
    with pytest.raises(UnknownTypeError, match="nothing is registered"):
        build_module(dict(type="FPN"), reg, path="model.neck")


def test_lookup():
    reg = _fpn_registry()
    assert reg.lookup("FPN").__name__ == "FPN"
    with pytest.raises(UnknownTypeError, match="somewhere"):
        reg.lookup("fpn_", path="somewhere")


def _head_registry():
    reg = Registry("heads")

    @reg.register_module()
    class Shared2FCBBoxHead:
        def __init__(self, num_classes, in_channels=256):
            self.num_classes = num_classes
            self.in_channels = in_channels

    return reg


def test_unexpected_keyword_names_accepted_key_and_path():
    reg = _head_registry()
    cfg = dict(type="Shared2FCBBoxHead", num_clases=3)
    with pytest.raises(UnexpectedKeyError) as info:
        build_module(cfg, reg, path="model.roi_head.bbox_head")
    message = str(info.value)
    assert "num_classes" in message
    assert "num_clases" in message
    assert "model.roi_head.bbox_head" in message
    assert isinstance(info.value, TypeError)


def test_missing_required_argument_is_named():
    reg = _head_registry()
    with pytest.raises(ConfigKeyError) as info:
        build_module(dict(type="Shared2FCBBoxHead", in_channels=8), reg, path="model.head")
    assert "num_classes" in str(info.value)
    assert "model.head" in str(info.value)


def test_cfg_without_type_errors():
    reg = _head_registry()
    with pytest.raises(ConfigKeyError, match="type") as info:
        build_module(dict(num_classes=3), reg, path="model.head")
    assert "model.head" in str(info.value)


@pytest.mark.parametrize("cfg", [None, ["type", "X"], "Shared2FCBBoxHead"])
def test_cfg_not_a_mapping_errors(cfg):
    reg = _head_registry()
    with pytest.raises(ConfigTypeError):
        build_module(cfg, reg)


@pytest.mark.parametrize("bad_type", [3, None, object()])
def test_type_of_wrong_kind_errors(bad_type):
    reg = _head_registry()
    with pytest.raises(ConfigTypeError, match="type must be"):
        build_module(dict(type=bad_type), reg, path="model.head")


def test_constructor_with_var_kwargs_accepts_any_key():
    reg = Registry("any")

    @reg.register_module()
    class Anything:
        def __init__(self, a=0, **kwargs):
            self.a = a
            self.kwargs = kwargs

    obj = build_module(dict(type="Anything", a=1, whatever=2, num_clases=3), reg)
    assert obj.a == 1
    assert obj.kwargs == dict(whatever=2, num_clases=3)


def test_a_built_object_passes_through_unchanged():
    reg = _head_registry()
    built = object()
    assert build_module(built, reg) is built
    assert build_module(built, reg, dict(num_classes=3)) is built  # defaults need a dict


class _Base:
    def __init__(self, num_classes, in_channels, feat_channels=256, loss=None):
        self.args = (num_classes, in_channels, feat_channels, loss)


class _Child(_Base):
    def __init__(self, num_classes, stacked_convs=4, **kwargs):
        self.stacked_convs = stacked_convs
        super().__init__(num_classes, **kwargs)


class _GrandChild(_Child):
    def __init__(self, num_classes, extra=None, **kwargs):
        self.extra = extra
        super().__init__(num_classes, **kwargs)


def test_keywords_forwarded_to_the_base_class_are_checked_there():
    reg = Registry("heads")
    reg.register_module(module=_GrandChild)
    obj = build_module(
        dict(type="_GrandChild", num_classes=3, in_channels=8, stacked_convs=2, extra=1), reg
    )
    assert obj.args == (3, 8, 256, None) and obj.stacked_convs == 2 and obj.extra == 1
    with pytest.raises(UnexpectedKeyError, match=r"'feat_channel'.*did you mean 'feat_channels'"):
        build_module(dict(type="_GrandChild", num_classes=3, feat_channel=8), reg, path="m.h")
    with pytest.raises(ConfigKeyError, match="needs 'num_classes'"):
        build_module(dict(type="_GrandChild", in_channels=8), reg, path="m.h")


def test_error_inside_constructor_gets_a_note():
    reg = Registry("boom")

    @reg.register_module()
    class Boom:
        def __init__(self, x):
            raise RuntimeError("kaboom")

    with pytest.raises(RuntimeError, match="kaboom") as info:
        build_module(dict(type="Boom", x=1), reg, path="model.boom")
    notes = getattr(info.value, "__notes__", [])
    assert any("model.boom" in note for note in notes)


# --------------------------------------------------------------------------- nested paths


def _nested_registry():
    reg = Registry("nested")

    @reg.register_module()
    class BBoxHead:
        def __init__(self, num_classes, in_channels=256):
            self.num_classes = num_classes

    @reg.register_module()
    class RoIHead:
        def __init__(self, bbox_head, train_cfg=None):
            if isinstance(bbox_head, list):
                self.bbox_head = [build_module(h, reg) for h in bbox_head]
            else:
                self.bbox_head = build_module(bbox_head, reg)

    @reg.register_module()
    class Detector:
        def __init__(self, backbone, roi_head):
            self.roi_head = build_module(roi_head, reg)

    return reg


def _detector_cfg(bbox_head):
    return dict(
        type="Detector",
        backbone=dict(depth=50),
        roi_head=dict(type="RoIHead", bbox_head=bbox_head),
    )


def test_nested_build_succeeds():
    reg = _nested_registry()
    model = build_module(_detector_cfg(dict(type="BBoxHead", num_classes=80)), reg, path="model")
    assert model.roi_head.bbox_head.num_classes == 80


def test_nested_path_is_inferred():
    reg = _nested_registry()
    cfg = _detector_cfg(dict(type="BBoxHead", num_clases=80))
    with pytest.raises(UnexpectedKeyError) as info:
        build_module(cfg, reg, path="model")
    message = str(info.value)
    assert "model.roi_head.bbox_head:" in message
    assert "num_classes" in message


def test_nested_path_through_list_child():
    reg = _nested_registry()
    heads = [dict(type="BBoxHead", num_classes=80), dict(type="BBoxHead", num_clases=80)]
    with pytest.raises(UnexpectedKeyError) as info:
        build_module(_detector_cfg(heads), reg, path="model")
    assert "model.roi_head.bbox_head.1:" in str(info.value)


def test_nested_path_for_unknown_type():
    reg = _nested_registry()
    with pytest.raises(UnknownTypeError) as info:
        build_module(_detector_cfg(dict(type="BBoxHeed", num_classes=1)), reg, path="model")
    assert "model.roi_head.bbox_head:" in str(info.value)
    assert "'BBoxHead'" in str(info.value)


def test_nested_path_without_explicit_root_path():
    reg = _nested_registry()
    with pytest.raises(UnexpectedKeyError) as info:
        build_module(_detector_cfg(dict(type="BBoxHead", num_clases=80)), reg)
    assert "<Detector>.roi_head.bbox_head:" in str(info.value)


def test_nested_config_errors_are_not_annotated_again():
    reg = _nested_registry()
    with pytest.raises(UnexpectedKeyError) as info:
        build_module(_detector_cfg(dict(type="BBoxHead", num_clases=80)), reg, path="model")
    assert not getattr(info.value, "__notes__", [])


def test_path_stack_is_reset_after_build():
    reg = _nested_registry()
    with pytest.raises(UnexpectedKeyError):
        build_module(_detector_cfg(dict(type="BBoxHead", num_clases=80)), reg, path="model")
    assert reg_mod._BUILDING.get() == ()
    # a later top-level build does not inherit the failed build's path
    with pytest.raises(UnexpectedKeyError) as info:
        build_module(dict(type="BBoxHead", num_clases=1), reg)
    assert str(info.value).startswith("<BBoxHead>:")


# --------------------------------------------------------------------------- v2 aliases


@pytest.mark.parametrize(
    "name",
    ["BACKBONES", "NECKS", "HEADS", "LOSSES", "DETECTORS", "ROI_EXTRACTORS", "SHARED_HEADS"],
)
def test_model_aliases_are_models(name):
    assert getattr(reg_mod, name) is reg_mod.MODELS


@pytest.mark.parametrize(
    "name",
    [
        "BBOX_ASSIGNERS",
        "BBOX_SAMPLERS",
        "BBOX_CODERS",
        "PRIOR_GENERATORS",
        "ANCHOR_GENERATORS",
        "IOU_CALCULATORS",
    ],
)
def test_task_util_aliases_are_task_utils(name):
    assert getattr(reg_mod, name) is reg_mod.TASK_UTILS


def test_pipelines_is_transforms():
    assert reg_mod.PIPELINES is reg_mod.TRANSFORMS


def test_concept_registries_are_distinct():
    concept = [
        reg_mod.MODELS,
        reg_mod.TASK_UTILS,
        reg_mod.DATASETS,
        reg_mod.TRANSFORMS,
        reg_mod.HOOKS,
        reg_mod.OPTIMIZERS,
        reg_mod.LR_SCHEDULES,
    ]
    assert len({id(r) for r in concept}) == len(concept)


def test_registering_into_backbones_is_visible_in_models():
    name = "_DetforgeTestOnlyBackbone_7f3a"
    assert reg_mod.MODELS.get(name) is None
    try:

        @reg_mod.BACKBONES.register_module(name=name)
        class TinyBackbone:
            def __init__(self, depth=1):
                self.depth = depth

        assert reg_mod.MODELS.get(name) is TinyBackbone
        obj = build_module(dict(type=name, depth=3), reg_mod.MODELS)
        assert obj.depth == 3
    finally:
        reg_mod.MODELS._modules.pop(name, None)
    assert reg_mod.MODELS.get(name) is None


# ------------------------------------------------------- path inference with copies and arrays


def test_nested_path_survives_copy_and_update_and_array_arguments():
    np = pytest.importorskip("numpy")
    reg = Registry("copying")

    @reg.register_module()
    class Head:
        def __init__(self, num_classes, train_cfg=None):
            self.num_classes = num_classes

    @reg.register_module()
    class Detector:
        def __init__(self, weights, rpn_head, train_cfg=None):
            head = dict(rpn_head)  # MMDetection's pattern: copy, then add keys
            head.update(train_cfg=train_cfg)
            self.rpn_head = build_module(head, reg)

    cfg = dict(
        type="Detector",
        weights=np.ones(3),  # elementwise ==: must not break the search
        rpn_head=dict(type="Head", num_clases=2),
        train_cfg=dict(a=1),
    )
    with pytest.raises(UnexpectedKeyError) as info:
        build_module(cfg, reg, path="model")
    assert "model.rpn_head:" in str(info.value)


def test_alias_names_must_be_strings():
    reg = Registry("aliases")
    with pytest.raises(TypeError, match="non-empty strings"):
        reg.register_module(name=["A", 5], module=type("X", (), {}))
    assert len(reg) == 0
