"""IMCApplication: the MONAI Deploy application graph, DICOM study in, one IMC SR per image series out.

``app_package/app.py`` is this class; ``monai-imc run`` runs it in-process. Input, output and model
folders come from the constructor, else from ``-i/-o/-m`` or ``HOLOSCAN_INPUT_PATH`` /
``HOLOSCAN_OUTPUT_PATH`` / ``HOLOSCAN_MODEL_PATH`` (the SDK's app context), like the SDK's example apps.
The model folder is the bundle, or a folder holding one bundle (a MAP's ``/opt/holoscan/models``).

After :meth:`run`, :attr:`IMCApplication.report` holds the run report; its ``exit_code`` is the app's.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any

from monai.deploy.conditions import CountCondition
from monai.deploy.core import Application
from monai.deploy.operators.dicom_series_selector_operator import DICOMSeriesSelectorOperator

from monai_imc.atomic import remove_pending
from monai_imc.deploy.checks import check_run_arguments
from monai_imc.deploy.context import IMCContext, default_bundle, load_context
from monai_imc.deploy.process import start_report
from monai_imc.deploy.report import Outcome, RunReport
from monai_imc.deploy.sr_step import sr_file_name
from monai_imc.operators.artifact_perceiver import ArtifactPerceiverOperator
from monai_imc.operators.dicom_loader import IMCDicomLoaderOperator
from monai_imc.operators.pdc_calibrator import PDCCalibratorOperator
from monai_imc.operators.series_to_views import SeriesToViewsOperator
from monai_imc.operators.sms_report_refiner import SMSReportRefinerOperator
from monai_imc.operators.sr_writer import IMCStructuredReportWriterOperator
from monai_imc.operators.stow_rs import STOWRSOperator
from monai_imc.operators.vlm_report import VLMReportOperator

__all__ = ["IMCApplication"]


class IMCApplication(Application):
    """IMC: perceive and calibrate image artifacts, refine clinical text, answer, write DICOM SR.

    Args:
        argv: command line (first item: the executable); default ``sys.argv``.
        imc: a context built beforehand (e.g. shared by several runs); default: built from the bundle.
        input_folder: the DICOM input; default from ``-i`` / ``HOLOSCAN_INPUT_PATH``.
        output_folder: where SRs go; default from ``-o`` / ``HOLOSCAN_OUTPUT_PATH``.
        bundle: the bundle (or a folder holding one); default from ``-m`` / ``HOLOSCAN_MODEL_PATH``, else
            the source checkout's ``bundles/monai_imc_vqa``.
        device: override the bundle config's device.
        stow_url: a DICOMweb root to send the SRs to with STOW-RS (``None``: keep them in the output folder
            only).
        skip_existing: keep the SRs already in the output folder that are current (same algorithm, newer
            than their source files) instead of redoing their series.

    The run report is saved as the run goes; SIGTERM and SIGINT end the run with the report completed
    (state ``interrupted``) and this run's temporary files removed (exit code 128 + the signal number).
    Temporary files a killed run left in the output folder are removed at start and reported.

    Example::

        app = IMCApplication(imc=context, input_folder="study/", output_folder="out/")
        app.run()
        app.report.exit_code
    """

    def __init__(
        self,
        argv: list[str] | None = None,
        *,
        imc: IMCContext | None = None,
        input_folder: str | os.PathLike[str] | None = None,
        output_folder: str | os.PathLike[str] | None = None,
        bundle: str | os.PathLike[str] | None = None,
        device: str | None = None,
        stow_url: str | None = None,
        skip_existing: bool = False,
        **kwargs: Any,
    ) -> None:
        self._logger = logging.getLogger(f"{__name__}.{type(self).__name__}")
        self._imc = imc
        self._input = Path(input_folder) if input_folder is not None else None
        self._output = Path(output_folder) if output_folder is not None else None
        self._bundle = Path(bundle) if bundle is not None else None
        self._device = device
        self._stow_url = stow_url
        self._skip_existing = skip_existing
        self._graph_started = threading.Event()
        self._started = time.time()
        self.report: RunReport | None = None
        super().__init__(argv or [], **kwargs)

    def _folders(self) -> tuple[Path, Path, Path | None]:
        """Input, output and model folders: the constructor's, else the SDK app context's."""
        if self._input is not None and self._output is not None:
            return self._input, self._output, self._bundle
        app_context = Application.init_app_context(self.argv)
        model = self._bundle or (Path(app_context.model_path) if app_context.model_path else None)
        return (
            self._input or Path(app_context.input_path),
            self._output or Path(app_context.output_path),
            model,
        )

    def compose(self) -> None:
        """Build the shared context once and chain the operators."""
        input_folder, output_folder, bundle = self._folders()
        check_run_arguments(
            input_folder, output_folder, bundle, self._stow_url, self._device, allow_empty=True
        )
        output_folder.mkdir(parents=True, exist_ok=True)
        if self._imc is None:
            self._imc = load_context(bundle if bundle is not None else default_bundle(), device=self._device)
        imc = self._imc
        report = self.report = start_report(RunReport(str(input_folder), str(output_folder)))

        loader = IMCDicomLoaderOperator(
            self,
            CountCondition(self, 1),
            report=report,
            ignore_names=(imc.settings.sidecar_name,),
            on_start=self._graph_started.set,
            input_folder=input_folder,
            must_load=False,
            name="dicom_loader",
        )
        selector = DICOMSeriesSelectorOperator(self, all_matched=True, name="series_selector")
        views = SeriesToViewsOperator(
            self,
            imc=imc,
            report=report,
            keep_current_in=output_folder if self._skip_existing else None,
            name="series_to_views",
        )
        perceiver = ArtifactPerceiverOperator(self, imc=imc, report=report, name="artifact_perceiver")
        calibrator = PDCCalibratorOperator(self, imc=imc, report=report, name="pdc_calibrator")
        refiner = SMSReportRefinerOperator(
            self, imc=imc, report=report, input_folder=input_folder, name="sms_report_refiner"
        )
        answerer = VLMReportOperator(self, imc=imc, report=report, name="vlm_report")
        writer = IMCStructuredReportWriterOperator(
            self, imc=imc, report=report, output_folder=output_folder, name="imc_sr_writer"
        )

        self.add_flow(loader, selector, {("dicom_study_list", "dicom_study_list")})
        self.add_flow(selector, views, {("study_selected_series_list", SeriesToViewsOperator.INPUT)})
        self.add_flow(views, perceiver, {(SeriesToViewsOperator.OUTPUT, ArtifactPerceiverOperator.INPUT)})
        self.add_flow(
            perceiver, calibrator, {(ArtifactPerceiverOperator.OUTPUT, PDCCalibratorOperator.INPUT)}
        )
        self.add_flow(calibrator, refiner, {(PDCCalibratorOperator.OUTPUT, SMSReportRefinerOperator.INPUT)})
        self.add_flow(refiner, answerer, {(SMSReportRefinerOperator.OUTPUT, VLMReportOperator.INPUT)})
        self.add_flow(answerer, writer, {(VLMReportOperator.OUTPUT, IMCStructuredReportWriterOperator.INPUT)})
        if self._stow_url:
            stow = STOWRSOperator(self, report=report, url=self._stow_url, name="stow_rs")
            self.add_flow(writer, stow, {(IMCStructuredReportWriterOperator.OUTPUT, STOWRSOperator.INPUT)})
        self._logger.info("IMC app: %s -> %s with bundle %s", input_folder, output_folder, imc.bundle)

    def run(self, *args: Any, **kwargs: Any) -> Any:
        """Run the graph; SIGTERM / SIGINT complete the run report (``interrupted``) before the process
        ends, and the report is marked ``complete`` when the graph is done.

        Holoscan runs the graph in a thread of its own and installs its own SIGTERM / SIGINT handler, which
        stops the graph and, when an operator is busy, exits after 3 s with the report unfinished. So the
        graph runs in a worker thread, the main thread waits in Python, and this app takes the signals back
        once the graph has started (the loader's first call).
        """
        self._started = time.time()
        noise = _SDKNoise()
        quiet = [logging.getLogger(), logging.getLogger("pydicom")]
        for logger in quiet:
            logger.addFilter(noise)
        handlers: dict[int, Any] = {}
        main = threading.current_thread() is threading.main_thread()
        try:
            with warnings.catch_warnings():
                # pydicom and highdicom warn about each value that breaks its VR, as they read it; the app
                # reports what matters once (monai_imc.dicom.vr keeps the originals in the SR)
                warnings.simplefilter("ignore", UserWarning)
                if not main:
                    result = super().run(*args, **kwargs)
                else:
                    handlers = {
                        s: signal.signal(s, self._interrupted) for s in (signal.SIGTERM, signal.SIGINT)
                    }
                    result = self._run_in_worker(*args, **kwargs)
        except Exception as exc:
            if self.report is not None:
                self.report.notes.append(f"the run stopped: {type(exc).__name__}: {exc}")
                self.report.finish("interrupted")
            raise
        finally:
            for logger in quiet:
                logger.removeFilter(noise)
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
        if self.report is not None:
            self.report.finish()
        return result

    def _run_in_worker(self, *args: Any, **kwargs: Any) -> Any:
        outcome: dict[str, Any] = {}

        def target() -> None:
            try:
                outcome["result"] = Application.run(self, *args, **kwargs)
            except BaseException as exc:  # noqa: BLE001  (re-raised in the main thread)
                outcome["error"] = exc

        worker = threading.Thread(target=target, name="imc-app-graph", daemon=True)
        worker.start()
        taken = False
        while worker.is_alive():
            worker.join(0.2)
            if not taken and self._graph_started.is_set():
                for signum in (signal.SIGTERM, signal.SIGINT):
                    signal.signal(signum, self._interrupted)  # back from Holoscan's handler
                taken = True
        if "error" in outcome:
            raise outcome["error"]
        return outcome.get("result")

    def _interrupted(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        removed = remove_pending(stop=True)  # and no other thread starts an output from now on
        if self.report is not None:
            self.report.autosave = False
            self._record_srs_in_place()
            self.report.notes.append(
                f"interrupted by {name} ({len(self.report.of('written'))} SR(s) written before; "
                f"{len(removed)} temporary file(s) of this run removed)"
            )
            self.report.finish("interrupted")
        self._logger.warning("interrupted by %s; run report completed", name)
        remove_pending(stop=True)  # again: a write that was in flight may have made its file anew
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(128 + signum)

    def _record_srs_in_place(self) -> None:
        """SRs this run renamed into place but had not recorded yet when the signal came: ``written``."""
        assert self.report is not None
        listed = {Path(o.sr_path).name for o in self.report.outcomes if o.sr_path}
        prefix, suffix = sr_file_name("|").split("|")
        for path in sorted(Path(self.report.output).glob(sr_file_name("*"))):
            try:
                new = path.stat().st_mtime >= self._started
            except OSError:
                continue
            if new and path.name not in listed:
                uid = path.name[len(prefix) : len(path.name) - len(suffix)]
                self.report.add(Outcome("written", "series", uid, "", str(path)))

    @property
    def exit_code(self) -> int:
        """The run's exit code (1 before a run)."""
        return self.report.exit_code if self.report is not None else 1


class _SDKNoise(logging.Filter):
    """Drops the SDK series selector's notice on the root logger that no selection rules are given
    (selecting every series is this app's design, not a problem) and pydicom's warnings about values it
    tolerates (the app reports the files and series that matter, once)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "pydicom":
            return record.levelno > logging.WARNING
        return not (record.name == "root" and record.getMessage().startswith("No selection rules given"))
