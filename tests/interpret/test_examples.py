"""Top examples and log-mel averages on planted tone bursts."""

import matplotlib.pyplot as plt
import numpy as np
import pytest

from neuro_sae.interpret import (
    mel_average,
    plot_activation_histogram,
    plot_feature_examples,
    plot_mel_average,
    top_examples,
)
from tests.interpret._fixtures import TONE_HZ, planted_audio_codes


def test_top_examples_planted(tmp_path):
    codes = planted_audio_codes(tmp_path)
    ex = top_examples(codes, 1, n=5, verbose=False)
    # one per clip (per_clip=1): tone-b peaks at 3.0 (clip index 1), tone-a at 2.5
    assert ex["clip_id"].tolist() == ["tone-b", "tone-a"]
    np.testing.assert_allclose(ex["activation"], [3.0, 2.5])
    assert abs(ex["time"].iloc[0] - 1.4) < 0.1 and abs(ex["time"].iloc[1] - 2.2) < 0.1
    ex2 = top_examples(codes, 1, n=5, per_clip=3, verbose=False)
    assert len(ex2) == 3 and sorted(ex2["clip_id"]) == ["tone-a", "tone-a", "tone-b"]
    with pytest.raises(ValueError, match="feature 9"):
        top_examples(codes, 9, verbose=False)


def test_mel_average_peaks_at_the_tone(tmp_path):
    codes = planted_audio_codes(tmp_path)
    mel, times, freqs = mel_average(codes, 1, n=10, window_s=1.0, verbose=False)
    assert mel.shape == (40, 101) and times[0] == -0.5 and times[-1] == 0.5
    band = np.argmin(np.abs(freqs - TONE_HZ))
    centre = np.argmin(np.abs(times))
    # the tone band at the activation is the loudest point, and quieter 0.4 s away
    assert np.unravel_index(np.nanargmax(mel), mel.shape)[0] in (band - 1, band, band + 1)
    assert mel[band, centre] > mel[band, np.argmin(np.abs(times - 0.4))] + 1.0
    fig = plot_mel_average(mel, times, freqs, feature=1, verbose=False)
    assert fig.axes[0].get_ylabel() == "mel band centre (Hz)"
    fig = plot_feature_examples(codes, 1, n=2, verbose=False)
    assert len(fig.axes) == 4  # two spectrograms, two activation axes
    fig = plot_activation_histogram(codes, 2, verbose=False)
    assert fig.axes[0].get_xlabel().startswith("activation")
    plt.close("all")
