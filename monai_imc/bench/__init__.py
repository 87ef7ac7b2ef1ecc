"""The robustness benchmark: datasets, the runner over noises x severities x methods, metrics and reports."""
