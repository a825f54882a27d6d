"""Converse-DnCNN forward: this project against the upstream code, over image sizes.

Every measurement runs in a fresh process (``benchmarks/harness.py``): the model load and
a warm-up forward on a 64×64 crop (half the side below 128²) are not timed; the timed
call is one forward of a noisy gray image of the size (σ 25, seed 0): the Set12 image of
that size (256²: 01, 512²: 08), at other sizes 08 mirrored and cropped (the packaged
sample photo where Set12 is absent). The peak memory is how far that process's resident
memory rose during the timed forward. The implementations alternate, round after round,
so that all see the same machine load; the outputs of every round are compared
(max |ours − baseline|), and the accuracy of the float32 runs is measured against the
baseline run in float64 at the smallest size: the exit status is 1 when ours is off by
more than 1e-4 (times the output's largest value, where that is above 1).

Implementations:

* ``ours``: ``conversenet.create_model("converse_dncnn")``;
* ``upstream``: ``models/converse_dncnn.py`` of a checkout of the upstream code
  (``--upstream DIR``). It is never copied into this repository; get it with
  ``git clone https://github.com/cszn/ConverseNet DIR``. Without it the upstream column
  is left out and the reason printed;
* ``literal`` (``--literal``, on in ``--quick``): ours with every Converse2D on the
  paper's literal algorithm.

The weights are the official ``converse_dncnn.pth`` (``--weights``); where that file is
absent, a random initialisation (seed 0) loaded by every implementation alike.

    python -m benchmarks.bench_vs_upstream --upstream DIR --rounds 2
    python -m benchmarks.bench_vs_upstream --upstream DIR --sizes 128 256 512 1024 --json f.json
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from benchmarks import harness
from benchmarks.internals import use_literal_operator
from conversenet import create_model, reuse_freed_memory, sample_image

SET12 = harness.SHARED / "data" / "Set12"
IMAGES = {256: "01.png", 512: "08.png"}  # Set12 images of those sizes
UPSTREAM_MODULE = Path("models") / "converse_dncnn.py"
OFFICIAL = harness.SHARED / "weights" / "official" / "converse_dncnn.pth"
TOLERANCE = 1e-4  # ours against the float64 baseline, times max(1, max |output|): exit 1 beyond


def clean_image(size: int) -> np.ndarray:
    """A gray ``size × size`` float32 image in [0, 1] (see the module docstring)."""
    path = SET12 / IMAGES.get(size, "08.png")
    if path.is_file():
        with Image.open(path) as im:
            image = np.asarray(im.convert("L"), dtype=np.float32) / 255
    else:
        image = sample_image().astype(np.float32).mean(axis=2) / 255
    h, w = image.shape
    image = np.pad(image, ((0, max(0, size - h)), (0, max(0, size - w))), mode="symmetric")
    return np.ascontiguousarray(image[:size, :size])


def noisy_image(size: int) -> np.ndarray:
    clean = clean_image(size)
    np.random.seed(0)  # the paper's protocol
    return (clean + np.random.normal(0, 25 / 255, clean.shape)).astype(np.float32)


def load(impl: str, weights: str, upstream: str | None) -> tuple[torch.nn.Module, type]:
    """The model of ``impl`` in eval mode and the no-grad context it runs under."""
    if impl == "upstream":
        sys.path.insert(0, str(Path(upstream).resolve()))  # in the fresh process only
        from models.converse_dncnn import ConverseDnCNN  # the upstream module

        model = ConverseDnCNN(
            in_channels=1, kernel_size=7, num_features=64, padding=6, padding_mode="circular"
        )
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        for p in model.parameters():  # as the upstream test script does
            p.requires_grad = False
        return model.eval(), torch.no_grad
    reuse_freed_memory()  # what restore(), the CLI and evaluate() do
    model = create_model("converse_dncnn", weights=Path(weights)).eval()
    if impl == "literal":
        use_literal_operator(model)
    return model, torch.inference_mode


def forward_child(
    impl: str, size: int, threads: int, weights: str, upstream: str | None, float64: bool
) -> dict:
    """In a fresh process: the time, peak memory rise and output of one forward."""
    torch.set_num_threads(threads)
    model, context = load(impl, weights, upstream)
    x = torch.from_numpy(noisy_image(size))[None, None]
    if float64:  # the reference: the algorithm without float32 rounding
        model, x = model.double(), x.double()
    measured = {}
    with context():
        warm = min(64, size // 2)
        model(x[..., :warm, :warm])  # warm-up

        def forward() -> None:
            measured["wall"], measured["cpu"], measured["y"] = harness.timed_call(lambda: model(x))

        peak = harness.peak_rise_mib(forward)
    return {
        "seconds": measured["wall"],
        "cpu_seconds": measured["cpu"],
        "peak_mib": peak,
        "output": measured["y"].numpy(),
    }


def upstream_problem(upstream: Path | None) -> str | None:
    """Why the upstream code cannot run (None when it can)."""
    how = "give --upstream DIR, a checkout of https://github.com/cszn/ConverseNet"
    if upstream is None:
        return how
    if not (upstream / UPSTREAM_MODULE).is_file():
        return f"{upstream} does not hold {UPSTREAM_MODULE}; {how}"
    return None


def random_weights(folder: Path) -> Path:
    torch.manual_seed(0)
    path = folder / "converse_dncnn_random.pth"
    torch.save(create_model("converse_dncnn").state_dict(), path)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = harness.Parser(__doc__, __spec__.name, repeats=None, warmup=None, threads=(2, 1))
    parser.add_argument("--upstream", type=Path, help="a checkout of cszn/ConverseNet")
    parser.option("--sizes", [256, 512], [32], type=int, nargs="+", help="image sides")
    parser.option("--rounds", 3, 1, type=int, help="measurements per implementation and size")
    parser.option(
        "--literal", False, True, action="store_true", help="also time the literal algorithm"
    )
    parser.add_argument("--weights", type=Path, default=OFFICIAL, help="converse_dncnn.pth")
    args = parser.parse_args(argv)
    if args.rounds < 1 or min(args.sizes) < 16:
        parser.error(f"--rounds must be >= 1 and --sizes >= 16, got {args.rounds}, {args.sizes}")
    problem = upstream_problem(args.upstream)
    impls = ["ours", *([] if problem else ["upstream"]), *(["literal"] if args.literal else [])]
    if problem:
        print(f"upstream column left out: {problem}")
    with tempfile.TemporaryDirectory() as tmp:
        weights = args.weights
        if not weights.is_file():
            print(f"random weights (seed 0): the official file {weights} is not here")
            weights = random_weights(Path(tmp))
        accurate = measure(args, impls, str(weights))
    return 0 if accurate else 1


def measure(args, impls: list[str], weights: str) -> bool:
    """Run the rounds, print the table, write the records; whether ours is accurate."""
    baselines = impls[1:]
    load = harness.machine_load()
    common = dict(
        threads=args.threads, weights=weights, upstream=args.upstream and str(args.upstream)
    )
    runs: dict[tuple[str, int], list[dict]] = {(i, s): [] for i in impls for s in args.sizes}
    worst = dict.fromkeys(baselines, 0.0)
    for index in range(args.rounds):
        for size in args.sizes:
            outputs = {}
            for impl in impls if index % 2 == 0 else impls[::-1]:
                run = harness.in_fresh_process(
                    forward_child, impl=impl, size=size, float64=False, **common
                )
                outputs[impl] = run.pop("output")
                runs[impl, size].append(run)
                print(f"round {index + 1} {size}² {impl:8s} {run['seconds']:7.2f} s", flush=True)
            for b in baselines:
                worst[b] = max(worst[b], float(np.abs(outputs["ours"] - outputs[b]).max()))
            if index == 0 and size == min(args.sizes):
                smallest = outputs
    size = min(args.sizes)
    accuracy, accurate = "", True
    if baselines:  # the float64 reference, once, untimed
        reference = harness.in_fresh_process(
            forward_child, impl=baselines[0], size=size, float64=True, **common
        )["output"]
        errors = {i: float(np.abs(smallest[i] - reference).max()) for i in impls}
        accurate = errors["ours"] <= TOLERANCE * max(1.0, float(np.abs(reference).max()))
        accuracy = f"\nagainst the {baselines[0]} algorithm in float64 ({size}²): " + ", ".join(
            f"{i} (float32) {e:.1e}" for i, e in errors.items()
        )
    print(
        f"\nConverse-DnCNN forward, {torch.get_num_threads()} threads, {args.rounds} rounds; "
        f"before: {load}; after: {harness.machine_load()}"
        + "".join(f"; max |ours - {b}| {w:.1e}" for b, w in worst.items())
        + accuracy
    )
    results = harness.Results(args.benchmark)
    headers = [*(f"{b} s (median)" for b in baselines), "ours s (median)"]
    headers += [f"speed-up vs {b}" for b in baselines]
    headers.append(f"peak MiB {' / '.join([*baselines, 'ours'])}")
    print(harness.markdown_table(["image", *headers], []), end="")
    for size in args.sizes:
        timings = {
            i: harness.Timing(
                [r["seconds"] for r in runs[i, size]], [r["cpu_seconds"] for r in runs[i, size]]
            )
            for i in impls
        }
        peaks = {i: max_or_none(r["peak_mib"] for r in runs[i, size]) for i in impls}
        for i in impls:
            results.add(
                "Converse-DnCNN forward", i, size=size, timing=timings[i], peak_mib=peaks[i],
                ours_speedup=timings[i].seconds / timings["ours"].seconds,  # ours is N× faster
            )  # fmt: skip
        ours = timings["ours"].seconds
        cells = [f"{size}²", *(f"{timings[b].seconds:.2f}" for b in baselines), f"{ours:.2f}"]
        cells += [f"**{timings[b].seconds / ours:.1f}×**" for b in baselines]
        cells.append(" / ".join(harness.mib(peaks[i]) for i in [*baselines, "ours"]))
        print(harness.markdown_row(cells))
    results.write_json(args.json)
    return accurate


def max_or_none(values) -> float | None:
    values = [v for v in values if v is not None]
    return max(values) if values else None


if __name__ == "__main__":
    sys.exit(main())
