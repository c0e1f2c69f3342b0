"""EEG preprocessing: windows, STFT with line-noise removal, normalisation, the on-disk cache of
prepared windows, k-of-n alarms and the classic baseline features."""
