"""The app's work, in plain Python: what the MONAI Deploy operators of ``monai_imc.operators`` call.

One study folder in, one IMC SR per image series out (``../../docs/app.md``)::

    context.py   the bundle's parts (model, bank, pipeline, refiner) built once and shared
    texts.py     the clinical texts of a series: standing questions, DICOM fields, a JSON sidecar
    work.py      SeriesWork, the record each series carries through the graph, and its steps
    audit.py     files the DICOM loader could not use, with the reason
    report.py    the run report: SRs written, series skipped or failed, the exit code
    process.py   the whole chain without Holoscan (tests, notebooks)
    sample.py    a sample study made from pydicom's bundled DICOM files, with noisy variants
    summary.py   a short summary of a written SR, read back from the file

Nothing here imports Holoscan or the MONAI Deploy SDK.
"""

from __future__ import annotations
