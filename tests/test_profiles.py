"""Hardware profiles: bundled files, SI conversion, schema validation and error messages."""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import pytest

from neurodeploy.errors import InputError, NeurodeployError, ProfileError
from neurodeploy.hardware import Constant, HardwareProfile, list_profiles, load_profile
from neurodeploy.hardware import profiles as profiles_mod
from neurodeploy.hardware.profiles import BUNDLED_DIR, CONFIDENCE_LEVELS, ENV_VAR, REQUIRED
from neurodeploy.hardware.units import DIMENSIONS, to_si

BUNDLED = ("digital_45nm", "loihi1", "loihi2", "rram_40nm", "rram_40nm_worstcase")


# ------------------------------------------------------------------ helpers


def _constant_toml(name: str, value, unit: str, source: str = "A. Author, Journal 1(1), 2020, Table 1",
                   confidence: str = "published", note: str | None = None) -> str:
    lines = [f"[constants.{name}]", f"value = {value}", f'unit = "{unit}"',
             f'source = "{source}"', f'confidence = "{confidence}"']
    if note is not None:
        lines.append(f'note = "{note}"')
    return "\n".join(lines) + "\n\n"


_EXAMPLE_UNIT = {
    "energy": "pJ",
    "time": "ns",
    "power": "mW",
    "conductance": "uS",
    "voltage": "V",
    "bytes": "KiB",
    "count": "count",
    "fraction": "1",
}


def _valid_toml(kind: str = "loihi", skip: str | None = None, override: dict | None = None,
                header: str | None = None) -> str:
    """A minimal valid profile of ``kind``; ``skip`` drops one constant, ``override``
    replaces a constant's block text."""
    override = override or {}
    text = header if header is not None else (
        f'[profile]\nname = "test_{kind}"\nkind = "{kind}"\ndescription = "unit test"\n\n'
    )
    for name, dim in REQUIRED[kind].items():
        if name == skip:
            continue
        if name in override:
            text += override[name]
        else:
            text += _constant_toml(name, 1.5, _EXAMPLE_UNIT[dim])
    return text


def _write(tmp_path: Path, text: str, name: str = "bad.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _error(path: Path) -> str:
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    message = str(info.value)
    assert "\n" not in message, "profile errors must be one line"
    assert path.name in message, f"message does not name the file: {message}"
    return message


# ------------------------------------------------------------------ bundled profiles


def test_list_profiles_returns_the_bundled_names():
    assert list_profiles() == sorted(BUNDLED)


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_profile_loads_with_every_required_constant(name):
    profile = load_profile(name)
    assert isinstance(profile, HardwareProfile)
    assert profile.name == name
    assert profile.path == (BUNDLED_DIR / f"{name}.toml").resolve()
    required = REQUIRED[profile.kind]
    missing = [key for key in required if key not in profile]
    assert not missing
    for key, constant in profile.constants.items():
        assert isinstance(constant, Constant)
        assert constant.name == key
        assert constant.source.strip()
        assert constant.confidence in CONFIDENCE_LEVELS
        assert math.isfinite(constant.si) and constant.si >= 0
        if constant.confidence == "estimated":
            assert constant.note.strip(), f"{name}.{key} is estimated without a note"
        if key in required:
            assert constant.unit in DIMENSIONS[required[key]]


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_sources_are_citations_not_placeholders(name):
    profile = load_profile(name)
    for key, constant in profile.constants.items():
        text = constant.source + " " + constant.note
        assert not re.search(r"\b(TODO|TBD|FIXME|XXX)\b", text), f"{name}.{key}"
        if constant.confidence in ("published", "measured"):
            # a published/measured number must point at a dated publication or a public repo
            assert re.search(r"(19|20)\d\d", constant.source) or "aihwkit" in constant.source \
                or "github.com" in constant.source, f"{name}.{key}: {constant.source!r}"


def test_load_by_path_equals_load_by_name():
    by_name = load_profile("loihi1")
    by_path = load_profile(BUNDLED_DIR / "loihi1.toml")
    by_str_path = load_profile(str(BUNDLED_DIR / "loihi1.toml"))
    assert by_name == by_path == by_str_path


def test_loihi1_matches_davies_2018_table2():
    """Davies et al., IEEE Micro 38(1), 2018, Table 2 (values at 0.75 V)."""
    p = load_profile("loihi1")
    table2 = {
        "energy_synop": (23.6, "pJ"),
        "time_synop": (3.5, "ns"),
        "energy_neuron_update_active": (81, "pJ"),
        "energy_neuron_update_inactive": (52, "pJ"),
        "time_neuron_update_active": (8.4, "ns"),
        "time_neuron_update_inactive": (5.3, "ns"),
        "energy_spike_within_tile": (1.7, "pJ"),
        "time_spike_within_tile": (2.1, "ns"),
        "energy_spike_hop": (3.0, "pJ"),  # E-W
        "time_spike_hop": (4.1, "ns"),  # E-W
        "energy_spike_hop_ns": (4.0, "pJ"),
        "time_spike_hop_ns": (6.5, "ns"),
        "time_barrier_sync_min": (113, "ns"),
        "time_barrier_sync_max": (465, "ns"),
        "energy_synaptic_update_stdp": (120, "pJ"),
        "time_synaptic_update_stdp": (6.1, "ns"),
    }
    for key, (value, unit) in table2.items():
        assert (p[key].value, p[key].unit) == (value, unit), key
        assert "Table 2" in p[key].source, key
        assert p[key].confidence == "published", key
    # active costs more than inactive, as in the paper
    assert p.si("energy_neuron_update_active") > p.si("energy_neuron_update_inactive")
    assert p.si("time_neuron_update_active") > p.si("time_neuron_update_inactive")
    # structure
    assert p["cores_per_chip"].value == 128
    assert p["neurons_per_core"].value == 1024
    assert p.si("synaptic_memory_per_core") == 128 * 1024
    assert p["max_fanin_axons_per_core"].value == 4096
    assert p["max_fanout_axons_per_core"].value == 4096


def test_loihi2_per_op_figures_are_marked_estimated_and_scaled_from_loihi1():
    l1, l2 = load_profile("loihi1"), load_profile("loihi2")
    assert l2["cores_per_chip"].value == 128
    assert l2["neurons_per_core"].value == 8192
    assert l2["weight_bits"].value == 8
    for key in REQUIRED["loihi"]:
        if key.startswith(("energy_", "time_")):
            assert l2[key].confidence == "estimated", key
            assert l2.si(key) == pytest.approx(0.5 * l1.si(key)), key
            assert "0.5" in l2[key].note, key


def test_rram_profile_is_self_consistent():
    p = load_profile("rram_40nm")
    assert p.kind == "rram"
    assert p.si("g_max") > p.si("g_min") >= 0
    assert p["array_rows"].value * p["array_cols"].value == 256 * 1024  # 256 Kb macro
    for key in ("programming_noise_sigma", "read_noise_sigma", "stuck_on_fraction",
                "stuck_off_fraction", "d2d_variation"):
        assert 0 <= p.si(key) < 1, key
    assert p.si("stuck_on_fraction") + p.si("stuck_off_fraction") < 0.5


# ------------------------------------------------------------------ SI conversion


def test_si_conversion_examples():
    p = load_profile("loihi1")
    assert p.si("energy_synop") == 2.36e-11  # 23.6 pJ
    assert p.si("time_synop") == 3.5e-9
    assert p.si("energy_spike_within_tile") == 1.7e-12
    assert p.si("static_power") == 0.029
    r = load_profile("rram_40nm")
    assert r.si("g_max") == 4e-5  # 40 uS
    assert r.si("energy_cell_read") == 1.83e-15
    assert r.si("macro_capacity") == 32 * 1024
    assert r["g_max"].si_unit == "S" and r["energy_cell_read"].si_unit == "J"


@pytest.mark.parametrize(
    "value, unit, expected",
    [
        (1, "fJ", 1e-15), (1, "nJ", 1e-9), (2, "uJ", 2e-6), (2, "µJ", 2e-6), (3, "mJ", 3e-3),
        (1, "J", 1.0), (10, "ps", 1e-11), (5, "us", 5e-6), (7, "ms", 7e-3), (1, "s", 1.0),
        (3, "uW", 3e-6), (5, "mW", 5e-3), (2, "nS", 2e-9), (40, "uS", 4e-5), (1, "mS", 1e-3),
        (200, "mV", 0.2), (1, "KiB", 1024), (1, "KB", 1024), (2, "MiB", 2 * 1024**2),
        (1, "MB", 1024**2), (512, "B", 512), (4096, "count", 4096), (5, "%", 0.05),
    ],
)
def test_unit_table(value, unit, expected):
    assert to_si(value, unit) == pytest.approx(expected, rel=1e-15)


def test_to_si_rejects_unknown_or_mismatched_units():
    with pytest.raises(ValueError):
        to_si(1, "furlong")
    with pytest.raises(ValueError):
        to_si(1, "ns", "energy")


# ------------------------------------------------------------------ API


def test_accessors_and_cite():
    p = load_profile("loihi1")
    assert p["energy_synop"] is p.get("energy_synop")
    assert p.get("no_such_constant") is None
    sentinel = object()
    assert p.get("no_such_constant", sentinel) is sentinel
    with pytest.raises(KeyError, match="no_such_constant"):
        p["no_such_constant"]
    line = p.cite("energy_synop")
    assert line.startswith("23.6 pJ \u2014 Davies et al.")
    assert line.endswith("(published)")
    assert "\n" not in line
    assert load_profile("loihi1")["cores_per_chip"].cite().startswith("128 count \u2014 ")


def test_profile_is_immutable():
    p = load_profile("loihi1")
    with pytest.raises(Exception):
        p.name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        p.constants["energy_synop"] = p["time_synop"]  # type: ignore[index]
    with pytest.raises(Exception):
        p["energy_synop"].value = 1.0  # type: ignore[misc]
    assert hash(p) == hash(load_profile("loihi1"))


@pytest.mark.parametrize("name", BUNDLED)
def test_to_dict_round_trips_through_json(name):
    p = load_profile(name)
    d = p.to_dict()
    text = json.dumps(d)
    back = json.loads(text)
    assert back == d
    if p.kind in ("loihi", "rram"):
        assert back["constants"]["static_power"]["si_unit"] == "W"
    energy = next(k for k, dim in REQUIRED[p.kind].items() if dim == "energy")
    assert back["constants"][energy]["si_unit"] == "J"
    assert set(back["constants"]) == set(p.constants)
    rebuilt = HardwareProfile.from_dict(back)
    assert rebuilt == p


# ------------------------------------------------------------------ lookup


def test_missing_name_lists_bundled_profiles():
    with pytest.raises(ProfileError) as info:
        load_profile("no_such_chip")
    message = str(info.value)
    assert "no_such_chip" in message
    for name in BUNDLED:
        assert name in message


def test_missing_path_names_the_path_and_lists_bundled(tmp_path):
    path = tmp_path / "absent.toml"
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    message = str(info.value)
    assert "absent.toml" in message and "not found" in message
    for name in BUNDLED:
        assert name in message


def test_profile_error_is_an_input_error():
    with pytest.raises(InputError):
        load_profile("no_such_chip")
    with pytest.raises(NeurodeployError):
        load_profile("no_such_chip")


def test_env_path_is_searched_before_bundled(tmp_path, monkeypatch):
    custom = tmp_path / "custom"
    custom.mkdir()
    text = _valid_toml("loihi", override={"energy_synop": _constant_toml("energy_synop", 99, "pJ")})
    text = text.replace('name = "test_loihi"', 'name = "loihi1"')
    (custom / "loihi1.toml").write_text(text, encoding="utf-8")
    (custom / "mychip.toml").write_text(_valid_toml("rram"), encoding="utf-8")
    monkeypatch.setenv(ENV_VAR, os.pathsep.join([str(tmp_path / "does_not_exist"), str(custom)]))
    shadowed = load_profile("loihi1")
    assert shadowed.si("energy_synop") == 99e-12
    assert shadowed.path == (custom / "loihi1.toml").resolve()
    assert load_profile("mychip").kind == "rram"
    assert list_profiles() == sorted(BUNDLED)
    assert "mychip" in list_profiles(include_env=True)


def test_extra_constants_are_allowed_but_validated(tmp_path):
    ok = _valid_toml("loihi") + _constant_toml("die_area_note_free", 60, "count")
    profile = load_profile(_write(tmp_path, ok, "ok.toml"))
    assert profile.si("die_area_note_free") == 60
    bad = _valid_toml("loihi") + _constant_toml("die_area", 60, "mm2")
    message = _error(_write(tmp_path, bad))
    assert "'die_area'" in message and "unknown unit 'mm2'" in message


# ------------------------------------------------------------------ validation errors


def test_missing_required_constant(tmp_path):
    message = _error(_write(tmp_path, _valid_toml("loihi", skip="energy_synop")))
    assert "constant 'energy_synop' is missing" in message


def test_missing_required_rram_constant(tmp_path):
    message = _error(_write(tmp_path, _valid_toml("rram", skip="drift_t0")))
    assert "constant 'drift_t0' is missing" in message


def test_wrong_unit_dimension(tmp_path):
    text = _valid_toml("loihi", override={"energy_synop": _constant_toml("energy_synop", 23.6, "ns")})
    message = _error(_write(tmp_path, text))
    assert "constant 'energy_synop' has unit 'ns', expected an energy unit (fJ, pJ, nJ, uJ, mJ, J)" in message


def test_wrong_conductance_unit(tmp_path):
    text = _valid_toml("rram", override={"g_max": _constant_toml("g_max", 40, "uW")})
    message = _error(_write(tmp_path, text))
    assert "'g_max'" in message and "expected a conductance unit" in message


def test_bad_confidence(tmp_path):
    text = _valid_toml("loihi", override={
        "time_synop": _constant_toml("time_synop", 3.5, "ns", confidence="guessed")})
    message = _error(_write(tmp_path, text))
    assert "constant 'time_synop'" in message and "confidence 'guessed'" in message
    for level in CONFIDENCE_LEVELS:
        assert level in message


def test_empty_source(tmp_path):
    text = _valid_toml("loihi", override={
        "static_power": _constant_toml("static_power", 29, "mW", source="   ")})
    message = _error(_write(tmp_path, text))
    assert "constant 'static_power' has an empty source" in message


def test_negative_value(tmp_path):
    text = _valid_toml("loihi", override={"energy_spike_hop": _constant_toml("energy_spike_hop", -3.0, "pJ")})
    message = _error(_write(tmp_path, text))
    assert "constant 'energy_spike_hop' has negative value -3" in message


def test_non_numeric_value(tmp_path):
    text = _valid_toml("loihi", override={"weight_bits": _constant_toml("weight_bits", '"eight"', "count")})
    message = _error(_write(tmp_path, text))
    assert "constant 'weight_bits' has non-numeric value 'eight'" in message


def test_boolean_value_is_not_numeric(tmp_path):
    text = _valid_toml("loihi", override={"weight_bits": _constant_toml("weight_bits", "true", "count")})
    message = _error(_write(tmp_path, text))
    assert "constant 'weight_bits' has non-numeric value True" in message


def test_nan_value(tmp_path):
    text = _valid_toml("loihi", override={"weight_bits": _constant_toml("weight_bits", "nan", "count")})
    message = _error(_write(tmp_path, text))
    assert "'weight_bits'" in message and "non-finite" in message


def test_estimated_without_note(tmp_path):
    text = _valid_toml("loihi", override={
        "time_synop": _constant_toml("time_synop", 1.75, "ns", confidence="estimated")})
    message = _error(_write(tmp_path, text))
    assert "constant 'time_synop' is 'estimated' but has no note" in message
    text = _valid_toml("loihi", override={
        "time_synop": _constant_toml("time_synop", 1.75, "ns", confidence="estimated",
                                     note="3.5 ns x 0.5 process scaling")})
    assert load_profile(_write(tmp_path, text, "ok.toml"))["time_synop"].note


def test_missing_field_in_constant(tmp_path):
    block = '[constants.energy_synop]\nvalue = 23.6\nsource = "x, 2018"\nconfidence = "published"\n\n'
    message = _error(_write(tmp_path, _valid_toml("loihi", override={"energy_synop": block})))
    assert "constant 'energy_synop' is missing field 'unit'" in message


def test_misspelled_field_in_constant(tmp_path):
    block = _constant_toml("energy_synop", 23.6, "pJ").replace("confidence =", "confidance =")
    message = _error(_write(tmp_path, _valid_toml("loihi", override={"energy_synop": block})))
    assert "constant 'energy_synop' has unknown field 'confidance'" in message


def test_toml_syntax_error_names_file_and_line(tmp_path):
    text = _valid_toml("loihi")
    lines = text.splitlines()
    lines.insert(5, "value 23.6")  # missing '=' on line 6
    message = _error(_write(tmp_path, "\n".join(lines) + "\n"))
    assert "TOML syntax error at line 6" in message


def test_unknown_kind(tmp_path):
    header = '[profile]\nname = "x"\nkind = "fpga"\n\n'
    message = _error(_write(tmp_path, _valid_toml("loihi", header=header)))
    assert "kind 'fpga' is unknown" in message and "loihi" in message and "rram" in message


def test_missing_kind(tmp_path):
    header = '[profile]\nname = "x"\n\n'
    message = _error(_write(tmp_path, _valid_toml("loihi", header=header)))
    assert "field 'kind' is missing" in message


def test_missing_profile_table(tmp_path):
    message = _error(_write(tmp_path, _valid_toml("loihi", header="")))
    assert "missing [profile] table" in message


def test_missing_constants_table(tmp_path):
    message = _error(_write(tmp_path, '[profile]\nname = "x"\nkind = "rram"\n'))
    assert "missing [constants] table" in message


def test_error_names_file_relative_to_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sub = tmp_path / "hardware_profiles"
    sub.mkdir()
    path = _write(sub, _valid_toml("loihi", skip="energy_synop"))
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    assert str(info.value) == "hardware_profiles/bad.toml: constant 'energy_synop' is missing"


# ------------------------------------------------------------------ docs


@pytest.mark.parametrize("name", BUNDLED)
def test_docs_table_matches_bundled_profile(name):
    """docs/profiles.md lists every bundled constant with its current value."""
    docs = (BUNDLED_DIR.parent / "docs" / "profiles.md").read_text(encoding="utf-8")
    marker = f"### `{name}`"
    assert marker in docs
    section = docs.split(marker, 1)[1].split("\n### ", 1)[0]
    profile = load_profile(name)
    for key, constant in profile.constants.items():
        value = profiles_mod._format_number(constant.value)
        unit = "" if constant.unit == "1" else f" {constant.unit}"
        row = f"| `{key}` | {value}{unit} | {constant.confidence} |"
        assert row in section, f"docs/profiles.md is out of date for {name}.{key}: {row}"


# ------------------------------------------------------------------ loihi structure


@pytest.mark.parametrize("name", ["loihi1", "loihi2"])
def test_loihi_tile_constants_agree_with_the_chip(name):
    """The barrier's top tile count is the whole chip: cores_per_chip / cores_per_tile."""
    p = load_profile(name)
    assert p.si("barrier_tiles_max") * p.si("cores_per_tile") == p.si("cores_per_chip")


def test_loihi2_delay_limit_is_what_its_delay_bits_hold():
    p = load_profile("loihi2")
    assert p.si("max_delay") == 2 ** p.si("delay_bits") - 1
    assert load_profile("loihi1").si("max_delay") <= 2 ** load_profile("loihi1").si("delay_bits") - 1


def test_loihi2_state_bits_match_lavas_fixed_point_lif():
    lava_models = pytest.importorskip("lava.proc.lif.models")
    import inspect

    src = inspect.getsource(lava_models.AbstractPyLifModelFixed)
    assert f"self.uv_bitwidth = {int(load_profile('loihi2').si('state_bits'))}" in src
