"""Training and evaluation data: the speaker-hash splits (`dataset`), decoded clips and their cache
(`clips`), background noise (`noise`), waveform augmentation (`augment`), dataset downloads
(`download`) and the negatives the package carries (`negatives`, `negatives_data/`)."""
