"""mmcv 1.x ``Config`` semantics (reference §1.4 and §8.3 item 1), on our own fixture files."""

from __future__ import annotations

import copy
import json
import math
import os
import pickle
import sys
import traceback
from pathlib import Path

import pytest

from detforge.config import Config, ConfigDict
from detforge.errors import ConfigError, ConfigKeyError, ConfigSyntaxError, ConfigTypeError

DATA = Path(__file__).resolve().parents[1] / "data" / "config"


def fixture(name: str) -> str:
    return str(DATA / name)


def read(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


def test_child_over_base_merges_dicts_and_replaces_lists() -> None:
    cfg = Config.fromfile(fixture("child.py"))
    assert cfg.item1 == [2, 3]
    assert cfg.item2.a == 1
    assert cfg.item3 is False
    assert cfg.item4 == "test_base"
    assert cfg.filename == fixture("child.py")


def test_text_is_base_text_then_child_text() -> None:
    cfg = Config.fromfile(fixture("child.py"))
    expected = f"{fixture('base.py')}\n{read('base.py')}\n{fixture('child.py')}\n{read('child.py')}"
    assert cfg.text == expected


def test_dict_over_non_dict_is_a_type_error_that_suggests_delete() -> None:
    with pytest.raises(TypeError, match="_delete_=True") as info:
        Config.fromfile(fixture("dict_over_bool.py"))
    assert isinstance(info.value, ConfigTypeError)
    assert "item3" in str(info.value)
    assert str(info.value).startswith(str(fixture("dict_over_bool.py")))


def test_duplicate_key_among_bases_is_a_key_error_naming_both_files() -> None:
    with pytest.raises(KeyError, match="Duplicate key is not allowed among bases") as info:
        Config.fromfile(fixture("duplicate_bases.py"))
    assert "item1" in str(info.value)
    assert "other_base.py" in str(info.value)


def test_delete_replaces_wholesale_and_leaves_no_marker() -> None:
    cfg = Config.fromfile(fixture("delete.py"))
    assert cfg.item1 == {"a": 0}
    assert cfg.item2 == {"a": 0, "b": 0}
    assert isinstance(cfg.item1, ConfigDict)
    assert isinstance(cfg.item2, ConfigDict)
    assert "_delete_" not in cfg.item1
    # mmcv pops _delete_ only where the base has the key: on a new key it survives (raw).
    assert cfg.item3 == {"c": 1, "_delete_": True}


def test_helper_variables_are_evaluated_in_their_own_file() -> None:
    cfg = Config.fromfile(fixture("helper_child.py"))
    assert cfg.item_cfg == {"b": 2}
    assert cfg.item5 == {"cfg": {"b": 1}}
    assert cfg.item6 == {"cfg": {"b": 2}}


def test_base_variables_and_predefined_variables() -> None:
    cfg = Config.fromfile(fixture("vars.py"))
    assert cfg.item8 == "vars.py"
    assert cfg.item9 == {"a": 0}
    assert cfg.item10 == [3.1, 4.2, 5.3]
    assert cfg.item11 == "vars"
    assert cfg.item12 == ".py"
    assert cfg.item13 == str(DATA).replace("\\", "/")


def test_base_variables_nested_in_containers() -> None:
    cfg = Config.fromfile(fixture("vars_child.py"))
    assert cfg.item14 == "vars.py"  # the base's item8, not this file's name
    assert cfg.item15 == {
        "a": {"b": {"a": 0}},
        "b": [True],
        "c": ["test"],
        "d": [[{"e": {"b": [7, 8]}}], [3.1, 4.2, 5.3]],
        "e": [1, 2],
    }


@pytest.mark.parametrize("name", ["vars.json", "vars.yaml"])
def test_base_variables_in_json_and_yaml(name: str) -> None:
    cfg = Config.fromfile(fixture(name))
    assert cfg.item8 == name
    assert cfg.item9 == {"a": 0}
    assert cfg.item10 == [3.1, 4.2, 5.3]
    assert cfg.item1 == [1, 2]


def test_unknown_base_variable_names_it() -> None:
    with pytest.raises(ConfigKeyError, match=r"item2\.nope"):
        Config.fromfile(fixture("bad_base_var.py"))


def test_py_child_over_json_and_yaml_bases() -> None:
    cfg = Config.fromfile(fixture("mixed.py"))
    assert cfg.to_dict() == {
        "item1": [1, 2],
        "item3": {"a": 1, "c": 3},
        "item2": {"x": 1, "y": ["a", "b"]},
    }


def test_merge_from_dict_with_list_indices() -> None:
    cfg = Config.fromfile(fixture("list_items.py"))
    cfg.merge_from_dict({"item.0.a": 1, "item.1.b": 1})
    assert cfg.item == [{"a": 1}, {"b": 1, "c": 0}]


def test_merge_from_dict_list_keys_can_be_disallowed() -> None:
    cfg = Config.fromfile(fixture("list_items.py"))
    with pytest.raises(TypeError):
        cfg.merge_from_dict({"item.0.a": 1}, allow_list_keys=False)


def test_merge_from_dict_index_out_of_range() -> None:
    cfg = Config.fromfile(fixture("list_items.py"))
    with pytest.raises(KeyError, match=r"item\.2\.a: index 2 is out of range: item has 2 items"):
        cfg.merge_from_dict({"item.2.a": 1})


def test_merge_from_dict_dotted_keys_and_delete() -> None:
    cfg = Config(dict(a=dict(b=dict(c=1, d=2)), l=[1, 2]))
    cfg.merge_from_dict({"a.b.c": 3, "a.e": [4], "l": (5,)})
    assert cfg.to_dict() == {"a": {"b": {"c": 3, "d": 2}, "e": [4]}, "l": (5,)}
    cfg.merge_from_dict({"a.b": dict(_delete_=True, z=0)})
    assert cfg.a.b == {"z": 0}


def test_merge_from_dict_scalar_into_list_element() -> None:
    cfg = Config(dict(neck=dict(in_channels=[256, 512])))
    cfg.merge_from_dict({"neck.in_channels.1": 1024})
    assert cfg.neck.in_channels == [256, 1024]


@pytest.mark.parametrize("key", ["filename", "text", "pretty_text"])
def test_reserved_keys_are_rejected(key: str) -> None:
    with pytest.raises(KeyError, match=f"{key} is reserved"):
        Config({key: 1})


def test_reserved_key_in_file() -> None:
    with pytest.raises(KeyError, match="filename is reserved"):
        Config.fromfile(fixture("reserved.py"))


def test_module_globals_become_keys_except_modules_and_functions() -> None:
    cfg = Config.fromfile(fixture("globals.py"))
    # `from math import pi` binds a float: like any other global it becomes a key.
    assert set(cfg) == {"pi", "img_norm_cfg", "doubled", "here", "circle", "_private"}
    assert cfg.img_norm_cfg.to_rgb is True
    assert cfg.doubled == 42
    assert cfg.here == "globals.py"  # __file__ is the real config path
    assert cfg.circle == pytest.approx(math.pi)


def test_deprecation_key_warns_and_is_removed() -> None:
    with pytest.warns(DeprecationWarning, match="Please use child.py instead"):
        cfg = Config.fromfile(fixture("deprecated.py"))
    assert "_deprecation_" not in cfg
    assert cfg.item1 == 1


def test_base_cycle_is_reported() -> None:
    with pytest.raises(ConfigKeyError, match="cycle"):
        Config.fromfile(fixture("cycle_a.py"))


def test_missing_base_names_child_and_base() -> None:
    with pytest.raises(FileNotFoundError) as info:
        Config.fromfile(fixture("missing_base.py"))
    assert isinstance(info.value, ConfigError)
    assert "missing_base.py" in str(info.value)
    assert "no_such_file.py" in str(info.value)


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("bad.json", '{"a": 1,\n "b": }', "bad.json, line 2: Expecting value"),
        ("bad.yaml", "a: [1, 2\nb: 3\n", "bad.yaml, line 2: "),
        ("runtime.py", "data_root = -1\nann = data_root + 'x.json'\n",
         "runtime.py, line 2: the config raised TypeError: unsupported operand"),
        ("unpack.py", "a, b = [1, 2, 3]\n", "unpack.py, line 1: the config raised ValueError"),
        ("imports.py", "custom_imports = dict(imports=[], allow_failed_import=True)\n",
         "imports.py: custom_imports: unexpected key 'allow_failed_import'; "
         "did you mean 'allow_failed_imports'"),
    ],
)  # fmt: skip
def test_a_broken_file_is_a_config_error_naming_file_and_line(
    tmp_path: Path, name: str, text: str, expected: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        Config.fromfile(path)
    assert str(info.value).startswith(f"{tmp_path}/{expected}")


def test_missing_file_and_bad_extension(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Config.fromfile(tmp_path / "nope.py")
    bad = tmp_path / "cfg.txt"
    bad.write_text("a = 1")
    with pytest.raises(OSError, match="Only py/yml/yaml/json"):
        Config.fromfile(bad)


def test_syntax_error_points_at_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.py"
    path.write_text("a = dict(\n")
    with pytest.raises(SyntaxError) as info:
        Config.fromfile(path)
    assert isinstance(info.value, ConfigSyntaxError)
    assert info.value.filename == str(path)
    assert str(info.value).startswith(f"{path}, line 1: ")


def test_runtime_error_is_a_config_error_naming_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "nameerror.py"
    path.write_text("a = 1\nb = undefined_name\n")
    with pytest.raises(ConfigError) as info:
        Config.fromfile(path)
    assert str(info.value) == (
        f"{path}, line 2: the config raised NameError: name 'undefined_name' is not defined"
    )
    cause = info.value.__cause__
    assert isinstance(cause, NameError)  # its traceback still runs through the file
    assert str(path) in [entry.filename for entry in traceback.extract_tb(cause.__traceback__)]


def test_custom_imports_are_imported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "my_plugin_mod.py").write_text("LOADED = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "my_plugin_mod", raising=False)
    cfg_file = tmp_path / "cfg.py"
    cfg_file.write_text(
        "custom_imports = dict(imports=['my_plugin_mod'], allow_failed_imports=False)\n"
    )
    Config.fromfile(cfg_file)
    assert sys.modules["my_plugin_mod"].LOADED is True
    monkeypatch.delitem(sys.modules, "my_plugin_mod")
    Config.fromfile(cfg_file, import_custom_modules=False)
    assert "my_plugin_mod" not in sys.modules


def test_custom_imports_failure_names_the_module(tmp_path: Path) -> None:
    cfg_file = tmp_path / "cfg.py"
    cfg_file.write_text("custom_imports = dict(imports=['no_such_plugin_xyz'])\n")
    with pytest.raises(ImportError, match="no_such_plugin_xyz"):
        Config.fromfile(cfg_file)
    cfg_file.write_text(
        "custom_imports = dict(imports=['no_such_plugin_xyz'], allow_failed_imports=True)\n"
    )
    with pytest.warns(UserWarning, match="no_such_plugin_xyz"):
        Config.fromfile(cfg_file)


def test_mmcls_models_import_is_provided_by_detforge(tmp_path: Path) -> None:
    # v2's ConvNeXt/timm configs import mmcls.models to register mmcls.ConvNeXt/TIMMBackbone;
    # detforge registers those names itself, so the import is not attempted (mmcls absent)
    cfg_file = tmp_path / "cfg.py"
    cfg_file.write_text(
        "custom_imports = dict(imports=['mmcls.models'], allow_failed_imports=False)\n"
        "model = dict(backbone=dict(type='mmcls.ConvNeXt'))\n"
    )
    assert "mmcls" not in sys.modules
    cfg = Config.fromfile(cfg_file)
    assert cfg.model.backbone.type == "mmcls.ConvNeXt"
    assert "mmcls" not in sys.modules


def test_custom_imports_find_the_current_directory_and_say_what_was_searched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """v2's ``python tools/train.py`` from the project root imports plug-ins found there."""
    (tmp_path / "cwd_plugin_mod.py").write_text("LOADED = True\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    monkeypatch.delitem(sys.modules, "cwd_plugin_mod", raising=False)
    (tmp_path / "cfg.py").write_text("custom_imports = dict(imports=['cwd_plugin_mod'])\n")
    Config.fromfile(tmp_path / "cfg.py")
    assert sys.modules.pop("cwd_plugin_mod").LOADED is True
    (tmp_path / "cfg.py").write_text("custom_imports = dict(imports=['no_such_plugin_xyz'])\n")
    with pytest.raises(ImportError, match=r"searched sys\.path:") as info:
        Config.fromfile(tmp_path / "cfg.py")
    assert f"\n  {tmp_path}" in str(info.value)


def test_fromstring_matches_fromfile() -> None:
    from_text = Config.fromstring(read("globals.py"), ".py").to_dict()
    from_file = Config.fromfile(fixture("globals.py")).to_dict()
    assert from_text.pop("here") == "config.py"  # fromstring runs a temporary file
    assert from_file.pop("here") == "globals.py"
    assert from_text == from_file
    assert Config.fromstring('{"a": [1, 2]}', ".json").a == [1, 2]
    assert Config.fromstring("a:\n  b: 1\n", ".yaml").a.b == 1
    with pytest.raises(OSError):
        Config.fromstring("a = 1", ".txt")


def test_attribute_access_and_assignment() -> None:
    cfg = Config(dict(model=dict(neck=dict(num_outs=5))))
    assert cfg.model.neck.num_outs == 5
    assert cfg["model"]["neck"]["num_outs"] == 5
    with pytest.raises(AttributeError, match="num_ins"):
        _ = cfg.model.neck.num_ins
    with pytest.raises(AttributeError):
        _ = cfg.not_there
    cfg.optimizer = dict(type="SGD", lr=0.02)
    assert isinstance(cfg.optimizer, ConfigDict)
    assert cfg.optimizer.lr == 0.02
    cfg["runner"] = dict(max_epochs=12)
    assert cfg.runner.max_epochs == 12
    assert "runner" in cfg
    assert len(cfg) == 3
    assert list(cfg) == ["model", "optimizer", "runner"]
    assert cfg.get("missing", 7) == 7


def test_pickle_and_deepcopy_round_trip() -> None:
    cfg = Config.fromfile(fixture("vars_child.py"))
    for other in (pickle.loads(pickle.dumps(cfg)), copy.deepcopy(cfg)):
        assert other.to_dict() == cfg.to_dict()
        assert other.filename == cfg.filename
        assert other.text == cfg.text
        assert isinstance(other.item15.a, ConfigDict)
    deep = copy.deepcopy(cfg)
    deep.item15.a.b.a = 99
    assert cfg.item15.a.b.a == 0
    shallow = copy.copy(cfg)
    assert shallow.item15 is cfg.item15


TRICKY = dict(
    quote='it\'s "quoted"',
    newline="a\nb",
    backslash="C:\\data\\coco",
    inf=math.inf,
    one=(1,),
    empty=dict(),
    empty_list=[],
    nested=[dict(a=(1, 2), b=[dict(c=None)])],
    mapping={"not an identifier": 1, 2: "int key", "class": "keyword"},
    long=dict(values=list(range(60)), names=[f"name_{i}" for i in range(20)]),
    flag=False,
    neg=-0.5,
)


def test_pretty_text_round_trips_tricky_values() -> None:
    cfg = Config(TRICKY)
    again = Config.fromstring(cfg.pretty_text, ".py")
    assert again.to_dict() == cfg.to_dict()
    assert all(len(line) <= 100 for line in cfg.pretty_text.splitlines())


def test_pretty_text_round_trips_fixture_configs() -> None:
    for name in ("vars_child.py", "delete.py", "globals.py", "mixed.py"):
        cfg = Config.fromfile(fixture(name))
        assert Config.fromstring(cfg.pretty_text, ".py").to_dict() == cfg.to_dict(), name


def test_pretty_text_rejects_top_level_non_identifier() -> None:
    with pytest.raises(ValueError, match="not a valid Python name"):
        _ = Config({"a-b": 1}).pretty_text


@pytest.mark.parametrize("ext", [".py", ".json", ".yaml"])
def test_dump_and_reload(tmp_path: Path, ext: str) -> None:
    cfg = Config.fromfile(fixture("vars_child.py"))
    out = tmp_path / f"dumped{ext}"
    cfg.dump(out)
    again = Config.fromfile(out)
    expected = json.loads(json.dumps(cfg.to_dict())) if ext != ".py" else cfg.to_dict()
    got = again.to_dict() if ext == ".py" else json.loads(json.dumps(again.to_dict()))
    assert got == expected
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_dump_without_file_uses_the_config_format() -> None:
    cfg = Config.fromfile(fixture("mixed.py"))
    assert cfg.dump() == cfg.pretty_text
    json_cfg = Config.fromfile(fixture("mixed_base.json"))
    assert json.loads(str(json_cfg.dump())) == {"item1": [1, 2], "item3": {"a": 1}}


def test_dump_keeps_old_file_when_writing_fails(tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "cfg.py"
    out.write_text("old = 1\n")

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("detforge.utils.fileio.os.replace", full_disk)
    with pytest.raises(OSError, match=r"cfg\.py"):
        Config(dict(new=2)).dump(out)
    assert out.read_text() == "old = 1\n"
    assert [p.name for p in tmp_path.iterdir()] == ["cfg.py"]


def test_base_of_returns_only_the_inherited_part() -> None:
    base = Config.base_of(fixture("child.py"))
    assert base.to_dict() == Config.fromfile(fixture("base.py")).to_dict()


def test_yaml_is_read_safely(tmp_path: Path) -> None:
    path = tmp_path / "evil.yaml"
    path.write_text("a: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(Exception, match="python/object"):
        Config.fromfile(path)


def test_config_error_hierarchy() -> None:
    assert issubclass(ConfigKeyError, KeyError)
    assert issubclass(ConfigTypeError, TypeError)
    assert issubclass(ConfigKeyError, ConfigError)
    assert str(ConfigKeyError("a 'b' c")) == "a 'b' c"


def test_dump_gives_the_usual_file_permissions(tmp_path: Path) -> None:
    out = tmp_path / "cfg.py"
    Config(dict(a=1)).dump(out)
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask
