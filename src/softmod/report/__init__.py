"""The paper's tables and figures from real runs (``softmod report``, DESIGN §6-7).

``collect`` finds and reads run directories, ``stats`` aggregates over seeds (mean ± std, IQM with
a bootstrap interval), ``tables`` and ``figures`` draw Tables 1-2 and Figures 3-6, ``routing``
collects routing probabilities from evaluation episodes, ``html`` writes ``index.html`` and
``build.build_report`` ties them together. Nothing is imported here, so that importing the
package (e.g. for :class:`~softmod.report.collect.ReportError`) does not load Matplotlib.
"""
