"""Dataset adapters: each reads one public dataset in the layout its distributor ships and
returns its items, label tasks and customary splits for `prepare_items`. Nothing is
downloaded; each adapter's `help` says where to get its dataset.

    d = ADAPTERS["gtzan"].items(args)      # args parsed with ADAPTERS["gtzan"].add_arguments
    prepare_items(d.items, out, name=d.name, tasks=d.tasks, source=d.source, ...)

| name           | dataset                      | tasks                                      |
|----------------|------------------------------|--------------------------------------------|
| mtat           | MagnaTagATune                | tags (multi, top 50)                       |
| gtzan          | GTZAN genres                 | genre (single, 10)                         |
| nsynth         | NSynth                       | instrument_family, pitch, instrument_source, qualities |
| jamendo        | MTG-Jamendo auto-tagging     | tags / genre / instrument / moodtheme (multi) |
| giantsteps_key | GiantSteps key (+ MTG key)   | key (single, 24)                           |
| emomusic       | emoMusic                     | arousal, valence (regression)              |
| tinysol        | TinySOL                      | instrument, pitch (single)                 |
| captions       | Song Describer / MusicCaps   | captions (+ MusicCaps aspects)             |
| giantsteps_tempo | GiantSteps tempo           | tempo (regression, BPM)                    |
| deam           | DEAM                         | arousal, valence (regression)              |
| fma            | FMA small / medium / large   | genre (single, 8 or 16), genres_all (multi) |
| mirdata        | any mirdata 1.0 dataset      | from track attributes (see adapters/mirdata.py) |
"""

from __future__ import annotations

from jaxmusic.prepare.adapters.base import Adapter, DatasetItems
from jaxmusic.prepare.adapters.captions import Captions
from jaxmusic.prepare.adapters.deam import Deam
from jaxmusic.prepare.adapters.emomusic import EmoMusic
from jaxmusic.prepare.adapters.fma import Fma
from jaxmusic.prepare.adapters.giantsteps_key import GiantStepsKey
from jaxmusic.prepare.adapters.giantsteps_tempo import GiantStepsTempo
from jaxmusic.prepare.adapters.gtzan import Gtzan
from jaxmusic.prepare.adapters.jamendo import MtgJamendo
from jaxmusic.prepare.adapters.mirdata import Mirdata
from jaxmusic.prepare.adapters.mtat import MagnaTagATune
from jaxmusic.prepare.adapters.nsynth import NSynth
from jaxmusic.prepare.adapters.tinysol import TinySol

ADAPTERS: dict[str, Adapter] = {
    a.name: a
    for a in (
        MagnaTagATune(),
        Gtzan(),
        NSynth(),
        MtgJamendo(),
        GiantStepsKey(),
        EmoMusic(),
        TinySol(),
        Captions(),
        GiantStepsTempo(),
        Deam(),
        Fma(),
        Mirdata(),
    )
}

__all__ = ["ADAPTERS", "Adapter", "DatasetItems"]
