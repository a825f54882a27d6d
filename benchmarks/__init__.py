"""The benchmarks of conversenet (not part of the installed package).

Run each from the repository root as a module, e.g. ``python -m benchmarks.bench_converse2d
--help``. Every script takes ``--quick`` (tiny sizes, one repeat, one thread: a smoke run
that tests/test_benchmarks.py runs) and ``--json PATH`` (its rows as flat records).

* ``harness``: the one timer, memory probe, argument parser and record format;
* ``cases``: the Converse2D operator cases shared by ``bench_converse2d`` and ``gpu_report``;
* ``internals``: the only module that reaches into the library's private functions;
* ``bench_converse2d``, ``bench_reverse_conv``, ``bench_fft``, ``bench_srresnet``,
  ``bench_training``, ``bench_dncnn_set12``, ``bench_vs_upstream``, ``bench_tiling``,
  ``bench_onnx``, ``bench_export``, ``bench_photo``, ``onnx_accuracy``,
  ``bench_checkerboard``: the benchmarks (see each docstring);
* ``gpu_report``: tests, operator, model and training timings on one device, as Markdown.
"""

SCRIPTS = (
    "bench_checkerboard",
    "bench_converse2d",
    "bench_dncnn_set12",
    "bench_export",
    "bench_fft",
    "bench_onnx",
    "bench_photo",
    "bench_reverse_conv",
    "bench_srresnet",
    "bench_tiling",
    "bench_training",
    "bench_vs_upstream",
    "gpu_report",
    "onnx_accuracy",
)
