"""MONAI Deploy operators of the IMC app: thin wrappers over :mod:`monai_imc.deploy`, one file each.

Importing this package imports the MONAI Deploy App SDK (and Holoscan); ``import monai_imc`` does not.

Graph (``docs/app.md``)::

    DICOMDataLoaderOperator -> DICOMSeriesSelectorOperator            (the SDK's)
      -> SeriesToViewsOperator -> ArtifactPerceiverOperator -> PDCCalibratorOperator
      -> SMSReportRefinerOperator -> VLMReportOperator -> IMCStructuredReportWriterOperator
      [-> STOWRSOperator, when a DICOMweb URL is given]

Every operator receives and emits the list of :class:`~monai_imc.deploy.work.SeriesWork` of the run; the
model, bank and refiner are built once (:class:`~monai_imc.deploy.context.IMCContext`) and shared.
"""

from __future__ import annotations

from monai_imc.operators.artifact_perceiver import ArtifactPerceiverOperator
from monai_imc.operators.pdc_calibrator import PDCCalibratorOperator
from monai_imc.operators.series_to_views import SeriesToViewsOperator
from monai_imc.operators.sms_report_refiner import SMSReportRefinerOperator
from monai_imc.operators.sr_writer import IMCStructuredReportWriterOperator
from monai_imc.operators.stow_rs import STOWRSOperator
from monai_imc.operators.vlm_report import VLMReportOperator

__all__ = [
    "ArtifactPerceiverOperator",
    "IMCStructuredReportWriterOperator",
    "PDCCalibratorOperator",
    "SMSReportRefinerOperator",
    "STOWRSOperator",
    "SeriesToViewsOperator",
    "VLMReportOperator",
]
