"""Throughput of ``monai-imc serve`` against ``monai-imc run`` on the same studies (a ratio, one run).

Both with the model loaded once beforehand (the service is long-running; ``run`` is timed on its app run):
``run`` = one app run over a folder holding every study; ``serve`` = from the first C-STORE (pynetdicom) of
the studies to the last study processed, quiet time included. Target: serve / run throughput >= 0.9.

    python bench/serve_throughput.py --studies 4 [--quiet 1.0]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import pydicom
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

os.environ.setdefault("HOLOSCAN_LOG_LEVEL", "WARN")


def _studies(folder: Path, count: int) -> list[Path]:
    files = []
    for index in range(count):
        study = generate_uid(entropy_srcs=["bench-serve", str(index)])
        for s, name in enumerate(("CT_small.dcm", "MR_small.dcm")):
            ds = pydicom.dcmread(get_testdata_file(name))
            ds.StudyInstanceUID = study
            ds.SeriesInstanceUID = generate_uid(entropy_srcs=["bench-serve", str(index), str(s)])
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid(
                entropy_srcs=["bench-serve", str(index), str(s), "i"]
            )
            ds.PatientID, ds.PatientName = f"BENCH-{index}", "Bench^Serve"
            path = folder / f"study{index}" / f"s{s}.dcm"
            path.parent.mkdir(parents=True, exist_ok=True)
            ds.save_as(path, enforce_file_format=True)
            files.append(path)
    return files


def _send(files: list[Path], port: int) -> None:
    from pynetdicom import AE

    ae = AE(ae_title="BENCH")
    datasets = [pydicom.dcmread(p) for p in files]
    for sop_class in sorted({str(d.SOPClassUID) for d in datasets}):
        ae.add_requested_context(sop_class)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assoc = ae.associate("127.0.0.1", port, ae_title="MONAI_IMC")
        if assoc.is_established:
            for ds in datasets:
                assoc.send_c_store(ds)
            assoc.release()
            return
        time.sleep(0.1)


def main() -> int:
    """Print the two times and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--studies", type=int, default=4)
    parser.add_argument("--quiet", type=float, default=1.0, help="the service's quiet time, s")
    args = parser.parse_args()
    from monai_imc.deploy.context import default_bundle, load_context
    from monai_imc.operators.application import IMCApplication
    from monai_imc.pacs.service import AppProcessor, Service
    from monai_imc.pacs.settings import ListenerSettings, ServeSettings

    context = load_context(default_bundle(), device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        files = _studies(root / "in", args.studies)
        start = time.perf_counter()
        app = IMCApplication(
            [sys.executable, "bench"], imc=context, input_folder=root / "in", output_folder=root / "run"
        )
        app.run()
        t_run = time.perf_counter() - start
        assert app.report is not None and len(app.report.written) == 2 * args.studies
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        settings = ServeSettings(
            root / "serve",
            listener=ListenerSettings(("BENCH",), port=port, quiet_seconds=args.quiet),
            exit_when_idle=0.5,
        )
        service = Service(settings, AppProcessor(context))
        sender = threading.Thread(target=_send, args=(files, port))
        start = time.perf_counter()
        sender.start()
        service.run()
        # the service stops 0.5 s after its last study (exit_when_idle): not part of its throughput
        t_serve = time.perf_counter() - start - 0.5
        sender.join()
        assert service.summary.processed == args.studies, service.summary
    print(f"run:   {args.studies} studies in {t_run:.2f} s")
    print(f"serve: {args.studies} studies in {t_serve:.2f} s (quiet time {args.quiet} s)")
    print(f"throughput ratio serve/run: {t_run / t_serve:.2f} (target >= 0.9)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
