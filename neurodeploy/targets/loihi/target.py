"""The Loihi targets: "loihi2-emu" (:class:`EmulatorTarget`, the torch emulator) and "lava"
(:class:`LavaTarget`, Lava's own process models). Both quantize the graph the same way
(:func:`compile_program`) against a Loihi hardware profile (default ``loihi2``), whose
``max_delay``, ``weight_bits``, ``state_bits`` and ``delay_bits`` the program keeps."""

from __future__ import annotations

from ...errors import InputError
from ..base import check_options
from .program import LoihiProgram

#: compile options shared by both Loihi targets {name: meaning}
QUANTIZE_OPTIONS = {
    "weight_exp": "auto (per-synapse weight exponent) | zero (exponent 0, as lava-dl netx needs)",
    "vth": "threshold mantissa of every spiking population (default: chosen per population)",
    "vth_max": "largest threshold mantissa chosen automatically (default 8192)",
    "chips": "map onto cores and fail (FitError) if more than this many chips are needed",
    "bias": "auto (a bias into a decaying CubaLIF current through the bias neuron, others as Lava's v bias) | "
            "synapse (every bias the current can carry through the bias neuron, from each layer's lag on: exact "
            "after the lag)",
    "allow_loop_delay": "accept loops through several synapses, which take more steps on Loihi than NIR's one "
                        "(default False: UnsupportedError naming the loop); their extra delay is reported",
    "weight_sign": "auto (default: split, but mixed with weight_exp=zero, the netx-compatible lowering) | mixed (one "
                   "synapse per matrix: Lava's mixed sign mode, even mantissas) | split (a mixed-sign matrix as "
                   "excitatory + inhibitory synapses: 8 bits of weight magnitude instead of 7, same nonzero synapses)",
}
#: the constants a program keeps from its profile (those the profile has)
HARDWARE_KEYS = ("weight_bits", "state_bits", "delay_bits", "max_delay")


def loihi_profile(hardware, target: str):
    """The HardwareProfile ``hardware`` names (default ``loihi2``); InputError unless Loihi."""
    from ...hardware.profiles import HardwareProfile, load_profile

    prof = hardware if isinstance(hardware, HardwareProfile) else load_profile(hardware or "loihi2")
    if prof.kind != "loihi":
        raise InputError(f"target '{target}': hardware profile '{prof.name}' is a {prof.kind} profile; "
                         "it needs a loihi profile (e.g. loihi2)")
    return prof


def compile_program(graph, hardware, target: str, weight_exp: str = "auto", vth: int | None = None,
                    vth_max: int = 1 << 13, chips: int | None = None, bias: str = "auto",
                    allow_loop_delay: bool = False, weight_sign: str = "auto") -> LoihiProgram:
    """Quantize ``graph`` against the profile; with an explicit ``hardware`` or ``chips``
    also map it onto cores (``program.mapping``; FitError if it does not fit)."""
    from .mapping import has_core_limits, map_program
    from .quantize import quantize

    prof = loihi_profile(hardware, target)
    hw = {"profile": prof.name, **{k: int(prof.si(k)) for k in HARDWARE_KEYS if k in prof}}
    prog = quantize(graph, weight_exp=weight_exp, vth=vth, vth_max=vth_max, max_delay=hw.get("max_delay"),
                    profile=prof.name, bias=bias, allow_loop_delay=allow_loop_delay, weight_sign=weight_sign)
    prog.graph, prog.hardware, prog.target = graph, hw, target
    prog.options.update({"chips": chips, "hardware": prof.name})
    if chips is not None or (hardware is not None and has_core_limits(prof)):
        prog.mapping = map_program(prog, prof, chips=chips)
    return prog


class EmulatorTarget:
    """Target "loihi2-emu": quantize to Lava fixed point and emulate it bit-exactly."""

    name = "loihi2-emu"
    compile_options = {**QUANTIZE_OPTIONS, "device": "default torch device of run(): cpu | cuda[:i]"}
    hardware_kinds: tuple[str, ...] = ("loihi",)
    default_hardware = "loihi2"

    def compile(self, graph, hardware=None, **options):
        """Quantize ``graph`` (options: :attr:`compile_options`) into an
        :class:`~.emulator.EmulatorProgram`."""
        from .emulator import EmulatorProgram, _device

        check_options(f"{self.name} target", options, self.compile_options)
        device = options.pop("device", None)
        _device(device)
        prog = compile_program(graph, hardware, self.name, **options)
        if device is not None:
            prog.options["device"] = str(device)
        return EmulatorProgram.of(prog)

    @staticmethod
    def load(path):
        from .emulator import EmulatorProgram

        return EmulatorProgram.load(path)


class LavaTarget:
    """Target "lava": the quantized program run by Lava's own process models."""

    name = "lava"
    compile_options = {
        **QUANTIZE_OPTIONS,
        "select_tag": "fixed_pt (bit-accurate models) | floating_pt (the un-rounded float twins)",
        "timeout": "seconds one sample may run before its Lava processes are killed (default: by size)",
        "conv": "lower convolution synapses to Lava's Conv process (default True)",
        "sparse_density": "largest nonzero fraction of a matrix lowered to Sparse (default 0.1; 0/None: never)",
        "sparse_min_entries": "smallest matrix (entries) lowered to Sparse (default 2^20)",
        "readback": "var (default: Lava's RingBuffer / Monitor read with Var.get, one message per element) | file "
                    "(recorder processes saved at the last step: for large nets)",
    }
    hardware_kinds: tuple[str, ...] = ("loihi",)
    default_hardware = "loihi2"

    def compile(self, graph, hardware=None, **options):
        """Quantize ``graph`` and wrap it in a :class:`~.lava.LavaProgram`."""
        from .lava import LavaProgram

        check_options(f"{self.name} target", options, self.compile_options)
        lava_kw = {k: options.pop(k) for k in list(options) if k not in QUANTIZE_OPTIONS}
        prog = compile_program(graph, hardware, self.name, **options)
        return LavaProgram(prog, **lava_kw)

    @staticmethod
    def load(path, **kw):
        from .lava import LavaProgram

        return LavaProgram.load(path, **kw)
