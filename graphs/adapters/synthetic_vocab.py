"""Topic vocabularies of the synthetic dataset (see :mod:`audiograph.graphs.adapters.synthetic`).

Each entry is ``(topic name, words)``; words are real English, usable for music,
podcasts and audiobooks, and unique across the whole table (so a word names one topic).
"""

from __future__ import annotations

_TABLE = {
    "jazz": "saxophone bebop swing trumpet improvisation trio nightclub "
    "standards brass harlem quartet ballad cool",
    "true crime": "murder detective investigation suspect evidence forensic trial "
    "verdict homicide witness alibi confession prosecutor",
    "history": "empire medieval revolution ancient dynasty archive pharaoh "
    "crusade renaissance colonial monarchy civilization chronicle",
    "science": "physics quantum biology experiment genome telescope molecule "
    "evolution laboratory neuron galaxy chemistry hypothesis",
    "comedy": "comedian standup sketch jokes sitcom satire parody "
    "punchline improv laughter roast banter hilarious",
    "indie rock": "guitar garage lofi bedroom fuzz riff alternative "
    "underground shoegaze distortion bandcamp drummer anthem",
    "hip hop": "rap beats rhymes freestyle turntable verse cypher "
    "mixtape sample flow boombap lyricist producer",
    "classical": "symphony orchestra concerto sonata violin piano opera "
    "baroque conductor chamber mozart cello overture",
    "fantasy": "dragon wizard kingdom sorcery quest elves prophecy "
    "enchanted sword castle realm magic dungeon",
    "self-help": "habits mindset motivation productivity confidence growth wellbeing "
    "goals resilience routine success purpose happiness",
    "business": "startup entrepreneur investing marketing leadership economy finance "
    "stocks strategy founder negotiation revenue venture",
    "sports": "football basketball soccer championship athlete coach league "
    "playoffs stadium tennis olympics baseball marathon",
    "horror": "ghost haunted zombie nightmare vampire creepy curse "
    "demon terror cemetery monster possession shadows",
    "romance": "love heartbreak wedding passion kiss sweetheart affair "
    "desire valentine lovers longing courtship flirt",
    "electronic": "techno synth house rave trance dubstep edm "
    "synthesizer dancefloor remix club bpm bassdrop",
    "meditation": "mindfulness breathing calm relaxation sleep yoga chakra "
    "zen stillness healing mantra serenity ambient",
    "cooking": "recipe kitchen chef baking cuisine spices pasta "
    "barbecue flavors dessert grill ingredients bread",
    "travel": "journey adventure backpacking island passport roadtrip explorer "
    "wanderlust mountains beach expedition destination abroad",
    "politics": "election democracy parliament senate policy campaign congress "
    "president debate ballot diplomacy legislation government",
    "technology": "software coding robots internet gadgets artificial computing "
    "cyber algorithm smartphone silicon data programming",
    "country": "banjo acoustic fiddle cowboy honkytonk nashville bluegrass "
    "harmonica folk ranch americana storyteller twang",
}
#: ``(topic name, words)`` entries; topic ``t`` of a dataset uses entry ``t % len(TOPICS)``.
TOPICS: tuple[tuple[str, tuple[str, ...]], ...] = tuple(
    (name, tuple(words.split())) for name, words in _TABLE.items()
)

_FILLER = (
    "the new best live episode vol collection edition night story sessions daily weekly show "
    "part original complete deluxe radio hour"
)
#: Generic words mixed into titles and descriptions as noise (no topic signal).
FILLER: tuple[str, ...] = tuple(_FILLER.split())

_STYLES = "mellow gritty epic whimsical dark upbeat intimate cerebral nostalgic raw lush minimal"
#: Style words of the hidden tastes: taste ``k`` is named by entry ``k % len(STYLES)`` (suffixed
#: ``2``, ``3``... beyond it); shared by every topic and type, so only topic + style is a cell.
STYLES: tuple[str, ...] = tuple(_STYLES.split())

#: Countries of the synthetic users (a weakly topic-correlated categorical feature).
COUNTRIES: tuple[str, ...] = ("US", "GB", "DE", "FR", "BR", "IN", "JP", "MX", "CA", "SE")

#: Two description templates per item type (three ``{}`` slots for vocabulary words).
TEMPLATES: dict[str, tuple[str, str]] = {
    "music": ("A song featuring {}, {} and {}.", "Music with {} and {}, inspired by {}."),
    "podcast": ("A podcast about {}, {} and {}.", "Weekly conversations on {} and {}, with {}."),
    "audiobook": ("An audiobook about {}, {} and {}.", "A novel of {}, {} and {}."),
}
