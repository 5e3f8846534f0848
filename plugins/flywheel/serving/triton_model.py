"""Triton's python-backend model for a flywheel version: runs the exported TorchScript ``ClickScorer``.

Copied as ``<repository>/flywheel_<version>/1/model.py`` by ``flywheel.serving.repository.export_version``;
it runs in Triton's python (the serving venv, or the Triton image), so it imports nothing from flywheel.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from typing import Any


class TritonPythonModel:
    """One per Triton model instance: ``sparse`` int64 [N, S] and ``dense`` float32 [N, D] rows in,
    ``probability`` float32 [N, 1] out. The dynamic batcher hands several requests to one ``execute``: they
    are scored in one forward pass and split back."""

    def initialize(self, args: dict[str, Any]) -> None:
        import torch
        import triton_python_backend_utils as pb_utils

        self.pb_utils = pb_utils
        self.torch = torch
        # One thread per instance: Triton scales by instances, and threads fighting over the cores cost p99.
        torch.set_num_threads(1)
        if args.get("model_instance_kind") == "GPU":
            self.device = torch.device(f"cuda:{int(args['model_instance_device_id'])}")
        else:
            self.device = torch.device("cpu")
        parameters = json.loads(args.get("model_config") or "{}").get("parameters") or {}
        drill = parameters.get("flywheel_drill_delay_ms") or {}
        # A rollback drill's slow model (flywheel.serving.repository.DELAY_PARAMETER); 0 when serving.
        self.delay_s = float(drill.get("string_value") or 0) / 1000
        path = os.path.join(args["model_repository"], args["model_version"], "model.pt")
        with warnings.catch_warnings():
            # torch 2.13 deprecates torch.jit in favour of torch.export; the file is TorchScript.
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            self.model = torch.jit.load(path, map_location=self.device).eval()

    def execute(self, requests: list[Any]) -> list[Any]:
        import numpy as np

        pb_utils, torch = self.pb_utils, self.torch
        if self.delay_s:
            time.sleep(self.delay_s)
        try:
            sparse = [pb_utils.get_input_tensor_by_name(r, "sparse").as_numpy() for r in requests]
            dense = [pb_utils.get_input_tensor_by_name(r, "dense").as_numpy() for r in requests]
            with torch.inference_mode():
                scores = self.model(
                    torch.from_numpy(np.concatenate(sparse).astype(np.int64, copy=False)).to(self.device),
                    torch.from_numpy(np.concatenate(dense).astype(np.float32, copy=False)).to(self.device),
                )
            scores = scores.to("cpu").numpy().astype(np.float32, copy=False).reshape(-1, 1)
        except Exception as exc:  # a failed batch answers each request with the error, never kills the stub
            error = pb_utils.TritonError(
                f"flywheel model failed to score the batch: {type(exc).__name__}: {exc}"
            )
            return [pb_utils.InferenceResponse(output_tensors=[], error=error) for _ in requests]
        responses, start = [], 0
        for rows in (len(s) for s in sparse):
            part = scores[start : start + rows]
            start += rows
            responses.append(
                pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("probability", part)])
            )
        return responses

    def finalize(self) -> None:
        self.model = None
