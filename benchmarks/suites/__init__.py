"""The suites, named by what they measure; each saves its figures and rewrites BENCHMARKS.md when it ends.

- :mod:`benchmarks.suites.training`: bertclf against the Hugging Face Trainer (and its own recipes and long-text
  strategies), run through ``python -m benchmarks.run --suite NAME``;
- :mod:`benchmarks.suites.runtimes`: ``transformers.pipeline`` against each of bertclf's runtimes
  (``python -m benchmarks.run --suite inference``);
- :mod:`benchmarks.suites.serving`: ``bertclf serve`` under concurrent load;
- :mod:`benchmarks.suites.file_prediction`: the peak memory of ``bertclf predict`` on a small and a large file;
- :mod:`benchmarks.suites.report_page`: what the run report (report.html) costs and whether it is whole.
"""
