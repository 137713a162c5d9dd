"""A model file's card as Markdown: the app's Models panel and the Python API show it. No Qt."""

from __future__ import annotations

from pathlib import Path

from .modelfile import ModelFileError, read_metadata
from .training.adapt import card_lines as adapted_lines
from .training.custom_words import card_lines


def model_card(path: Path) -> str:
    """A model's card as Markdown: what it recognizes, how it was trained, how well it does."""
    try:
        meta = read_metadata(path)
    except ModelFileError as err:
        return f"**Cannot read this model.**\n\n{err}"
    features, model = meta.get("features", {}), meta.get("model", {})
    words = [label for label in meta.get("labels", []) if not label.startswith("_")]
    lines = [f"### {Path(path).name}", "", f"**Words:** {', '.join(words) or '(none)'}", "",
             f"**Window:** {features.get('clip_seconds', '?')} s of {features.get('sample_rate', '?')} Hz audio, "
             f"{features.get('n_mfcc', '?')} MFCCs", "",
             f"**Model:** BiLSTM, {model.get('num_layers', '?')} layers x {model.get('hidden_size', '?')} units"
             + (f", {meta['parameters']:,} parameters" if meta.get("parameters") else ""), ""]
    if meta.get("note"):
        lines += [f"**Note:** {meta['note']}", ""]
    for split, values in meta.get("metrics", {}).items():
        lines.append(f"**{split.capitalize()} accuracy:** {values.get('accuracy', 0):.1%} on {values.get('clips', 0)} clips")
        lines.append("")
    trained = meta.get("trained_on", {})
    if trained:
        clips = trained.get("clips", {}).get("training", {})
        lines += [f"**Trained on:** {sum(clips.values()):,} clips ({', '.join(trained.get('sources', []))}) "
                  f"from {', '.join(Path(d).name for d in trained.get('data', []))}", ""]
    lines += card_lines(meta)  # a custom-word model: what to expect, and the negatives' credit
    lines += adapted_lines(meta)  # an adapted model: from which model, to how many takes
    card_file = Path(path).with_name("MODEL_CARD.md")
    if card_file.is_file() and Path(path).name.startswith("speech_commands"):
        lines += ["---", "", card_file.read_text(encoding="utf-8")]
    return "\n".join(lines)
