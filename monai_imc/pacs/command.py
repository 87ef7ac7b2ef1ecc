"""The options of ``monai-imc serve`` and the command itself (``monai_imc.cli`` adds the subcommand).

Usage::

    monai-imc serve -o OUT --port 11112 --allow-calling-ae ORTHANC --stow http://127.0.0.1:8042/dicom-web
    monai-imc serve -o OUT --pull https://pacs/dicom-web --dicomweb-user imc \\
        --dicomweb-password-env MONAI_IMC_DICOMWEB_PASSWORD --stow https://pacs/dicom-web
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from monai_imc.pacs.service import Processor, ServeSummary
from monai_imc.pacs.settings import (
    CStoreSettings,
    DicomwebSettings,
    ListenerSettings,
    PullSettings,
    ServeSettings,
)

__all__ = ["add_serve_arguments", "run_serve", "settings_from_args"]


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``serve`` to its parser."""
    parser.add_argument("-o", "--output", required=True, help="folder of the queue, received studies and SRs")
    parser.add_argument("--bundle", default=None, help="the MONAI bundle (default: bundles/monai_imc_vqa)")
    parser.add_argument("--device", default=None, help="override the bundle's device (cpu, cuda)")
    listen = parser.add_argument_group("listener (C-STORE SCP)")
    listen.add_argument("--port", type=int, default=None, help="listen for C-STORE on this port")
    listen.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    listen.add_argument("--ae-title", default="MONAI_IMC", help="our AE title (default MONAI_IMC)")
    listen.add_argument(
        "--allow-calling-ae",
        action="append",
        default=[],
        metavar="AE",
        help="a calling AE title to accept (repeat; at least one)",
    )
    listen.add_argument(
        "--quiet-seconds",
        type=float,
        default=10.0,
        help="a study is complete after this long without a new instance (default 10)",
    )
    listen.add_argument("--max-instances-per-association", type=int, default=5000)
    pull = parser.add_argument_group("DICOMweb pull source")
    pull.add_argument(
        "--pull", default=None, metavar="URL", help="poll this DICOMweb root (QIDO-RS, WADO-RS)"
    )
    pull.add_argument("--poll-seconds", type=float, default=30.0)
    pull.add_argument("--pull-limit", type=int, default=100, help="studies per QIDO-RS search")
    pull.add_argument(
        "--pull-filter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a QIDO-RS filter, e.g. ModalitiesInStudy=CT (repeat)",
    )
    dest = parser.add_argument_group("destination of the SRs")
    dest.add_argument("--stow", default=None, metavar="URL", help="STOW-RS to this DICOMweb root")
    dest.add_argument("--cstore", default=None, metavar="AE@HOST:PORT", help="C-STORE to this DICOM node")
    dest.add_argument("--calling-ae-title", default="MONAI_IMC", help="our AE title towards --cstore")
    web = parser.add_argument_group("DICOMweb security (for --pull and --stow)")
    web.add_argument("--dicomweb-user", default=None, help="HTTP basic user name")
    web.add_argument(
        "--dicomweb-password-env",
        default=None,
        metavar="VAR",
        help="environment variable holding the password",
    )
    web.add_argument(
        "--dicomweb-password-file", default=None, metavar="FILE", help="file holding the password (mode 600)"
    )
    web.add_argument("--ca-bundle", default=None, metavar="FILE", help="TLS: verify the server with this CA")
    web.add_argument("--client-cert", default=None, metavar="FILE", help="TLS: client certificate (PEM)")
    web.add_argument("--timeout", type=float, default=60.0, help="seconds per request (default 60)")
    queue = parser.add_argument_group("queue")
    queue.add_argument("--max-pending-studies", type=int, default=100)
    queue.add_argument(
        "--retry-seconds", type=float, default=5.0, help="first retry delay; doubles each time"
    )
    queue.add_argument("--retry-max-seconds", type=float, default=300.0)
    queue.add_argument(
        "--exit-when-idle",
        type=float,
        default=None,
        metavar="S",
        help="stop after S seconds with nothing to do (default: run until stopped)",
    )


def _dicomweb(args: argparse.Namespace, url: str) -> DicomwebSettings:
    return DicomwebSettings(
        url=url,
        username=args.dicomweb_user,
        password_env=args.dicomweb_password_env,
        password_file=Path(args.dicomweb_password_file) if args.dicomweb_password_file else None,
        ca_bundle=Path(args.ca_bundle) if args.ca_bundle else None,
        client_cert=Path(args.client_cert) if args.client_cert else None,
        timeout=args.timeout,
    )


def _cstore(text: str, calling: str, timeout: float) -> CStoreSettings:
    title, at, address = text.partition("@")
    host, colon, port = address.rpartition(":")
    if not at or not colon or not port.isdigit():
        raise ValueError(f"--cstore: {text!r} is not AE@HOST:PORT")
    return CStoreSettings(
        host=host, port=int(port), ae_title=title, calling_ae_title=calling, timeout=timeout
    )


def settings_from_args(args: argparse.Namespace) -> ServeSettings:
    """The validated settings of the parsed ``serve`` options.

    Raises:
        ValueError, FileNotFoundError: the first bad setting.
    """
    if args.stow and args.cstore:
        raise ValueError("give one destination: --stow or --cstore")
    listener = None
    if args.port is not None:
        listener = ListenerSettings(
            allowed_calling=tuple(args.allow_calling_ae),
            ae_title=args.ae_title,
            host=args.host,
            port=args.port,
            quiet_seconds=args.quiet_seconds,
            max_instances_per_association=args.max_instances_per_association,
        )
    pull = None
    if args.pull:
        filters = {}
        for item in args.pull_filter:
            key, eq, value = item.partition("=")
            if not eq or not key.strip():
                raise ValueError(f"--pull-filter: {item!r} is not KEY=VALUE")
            filters[key.strip()] = value
        pull = PullSettings(_dicomweb(args, args.pull), args.poll_seconds, args.pull_limit, filters)
    destination: DicomwebSettings | CStoreSettings | None = None
    if args.stow:
        destination = _dicomweb(args, args.stow)
    elif args.cstore:
        destination = _cstore(args.cstore, args.calling_ae_title, args.timeout)
    settings = ServeSettings(
        output=Path(args.output),
        bundle=Path(args.bundle) if args.bundle else None,
        device=args.device,
        listener=listener,
        pull=pull,
        destination=destination,
        max_pending_studies=args.max_pending_studies,
        retry_seconds=args.retry_seconds,
        retry_max_seconds=args.retry_max_seconds,
        exit_when_idle=args.exit_when_idle,
    )
    settings.validate()
    return settings


def run_serve(args: argparse.Namespace, processor: Processor | None = None) -> int:
    """``monai-imc serve``: validate the settings, load the model once, serve until stopped.

    Args:
        args: the parsed options.
        processor: processes each study (default: the app graph with the bundle's model).

    Returns:
        0 when every study was processed and delivered, 1 when something failed along the way.
    """
    settings = settings_from_args(args)  # before anything loads
    logging.getLogger("monai_imc.pacs").setLevel(logging.INFO)
    if processor is None:
        os.environ.setdefault("HOLOSCAN_LOG_LEVEL", "WARN")
        from monai_imc.deploy.context import default_bundle, load_context
        from monai_imc.pacs.service import AppProcessor

        processor = AppProcessor(load_context(settings.bundle or default_bundle(), device=settings.device))
    from monai_imc.pacs.service import Service

    service = Service(settings, processor)
    summary = service.run()
    print(_summary_line(summary, settings))
    return 1 if summary.processing_failures or summary.delivery_failures else 0


def _summary_line(summary: ServeSummary, settings: ServeSettings) -> str:
    where = settings.destination.public() if settings.destination else str(settings.output)
    return (
        f"serve: {summary.processed} study(ies) processed, {summary.delivered} delivered to {where}, "
        f"{summary.recovered} resumed, {summary.processing_failures} processing and "
        f"{summary.delivery_failures} delivery failure(s)"
    )
