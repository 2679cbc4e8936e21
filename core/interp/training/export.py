"""A trained model as files: the folder any transformers program (and this lab) loads.

The zip holds what `save_pretrained` writes (config.json, model.safetensors, generation_config.json),
the tokenizer (tokenizer.json and its config), and training_log.json (the settings and every logged
measurement). Unzipped, it opens with `AutoModelForCausalLM.from_pretrained(folder)` and
`AutoTokenizer.from_pretrained(folder)`, or in this lab by typing the folder into the model picker.
Attention-only models are ordinary GPT-2 / GPT-NeoX checkpoints whose MLP output weights are zero. A
model without block norms records that in its config (core.models.norms): this lab's loader restores
it exactly; a plain from_pretrained would normalise inside the blocks again.
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path

from core.interp.training.log import TrainingLog


def save_folder(model, tokenizer, log: TrainingLog, folder: str | Path) -> Path:
    """Write the model, tokenizer and training log into `folder` (created if needed)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    log.save(folder / "training_log.json")
    return folder


def model_zip(model, tokenizer, log: TrainingLog) -> bytes:
    """The folder of save_folder, zipped in memory (a few hundred KB for the page's models)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = save_folder(model, tokenizer, log, tmp)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(folder.iterdir()):
                zf.write(path, path.name)
        return buffer.getvalue()
