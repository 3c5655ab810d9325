"""Word pools of the CLEAR-mini world: names, places and the values of biography facts."""

from __future__ import annotations


def _pool(text: str) -> tuple[str, ...]:
    """Comma-separated words (items may contain spaces)."""
    return tuple(item.strip() for item in text.split(","))


FIRST_NAMES = _pool(
    "Mara, Tobias, Elin, Jonah, Priya, Anselm, Liora, Casimir, Nadia, Oren, Sabine, Teodor, "
    "Ines, Rafael, Yara, Lucan, Mirela, Dorian, Freya, Hugo, Ilse, Marek, Nora, Emeric, "
    "Sunniva, Kasper, Odile, Bastian, Leona, Silas, Alma, Cyrus, Delphine, Evander, Greta, "
    "Henrik, Isolde, Jarek, Katya, Linus, Magda, Niko, Ottilie, Piet, Rosalind, Stellan, "
    "Tamsin, Ulric, Vera, Wendel, Xenia, Yusuf, Zora, Amara, Bram, Celeste, Dario, Edda, Felix, "
    "Gideon, Hana, Ivo, Juno, Kian, Lotte, Milo, Nell, Osric, Petra, Quentin, Rhea, Soren, "
    "Thea, Umar, Valka, Wren, Aurelio, Bettina, Cosmo, Dagny, Elio, Fenna, Gustav, Helka, "
    "Idris, Jolene, Konrad, Lisbet, Matteo, Nuria, Orla, Pascal, Renske, Selim, Tova, Viggo, "
    "Wilma, Zeno, Anouk, Benedikt"
)
SURNAME_HEADS = _pool(
    "Ash, Bel, Bran, Cal, Dun, El, Fair, Gar, Hal, Kes, Lang, Mar, Nor, Pem, Rad, Stan, Thorn, "
    "Wex, Wyn, Ard, Bex, Cor, Dal, Fen, Hart, Lind, Mor, Ros, Sel, Tal, Ver, Whit, Yar, Brook, "
    "Col, Har, Kel, Pel, Stor, Quil"
)
SURNAME_TAILS = _pool(
    "ford, wick, ton, by, more, field, ley, worth, well, stead, mere, dale, holt, wood, ridge, "
    "croft, ham, hurst, sby, low"
)
COUNTRIES = _pool(
    "Veloria, Damaris, Orlanth, Suvania, Tarsk, Elmora, Norvane, Calderra, Ostmark, Peridel"
)
CITIES = _pool(
    "Marenport, Saltmere, Dunhollow, Brightwater, Kesselby, Orchard Vale, Ravenmoor, Greyhaven, "
    "Amberfall, Lowmarsh, Stonebridge, Wyncaster, Thornbury, Eastreach, Goldcliff, Highmoor, "
    "Fennick, Rosedale, Irongate, Silverlake, Port Alder, Cinderford, Mistral, Northwatch, "
    "Oakhurst, Pinecrest, Redhaven, Seabrook, Tidewell, Umberton, Valewood, Westmere, Yarrowby, "
    "Zephyr Bay, Ashgrove, Blackwater, Coldharbor, Deepdene, Elderstone, Frostholm"
)
CURRENCIES = _pool(
    "crown, tallon, mark, ducat, florin, sovereign, guilder, shell, penny, drachm, mina, real"
)
LANGUAGES = _pool(
    "Velorian, Damaric, Orlish, Suvan, Tarskan, Elmoric, Norvish, Calder, Ostic, Peridelian"
)
RIVERS = _pool(
    "Amber, Silt, Grey Run, Kestrel, Long Water, Mira, Oxbow, Rushing Vale, Sorrow, Tallow, "
    "Umber, Wend"
)
ANIMALS = _pool(
    "red fox, snow owl, grey wolf, river otter, golden eagle, black bear, white stag, sea "
    "turtle, mountain goat, blue heron, lynx, wild horse"
)
GENRES = _pool(
    "mystery novels, science fiction, fantasy novels, poetry, romance novels, horror stories, "
    "historical fiction, travel books, children's books, crime thrillers, short stories, plays, "
    "satire, graphic novels, cookbooks"
)
JOBS = _pool(
    "a baker, a sailor, a teacher, a carpenter, a doctor, a pilot, a tailor, a farmer, a "
    "librarian, an engineer, a nurse, a painter, a fisherman, a chemist, a judge, an architect, "
    "a gardener, a musician, a potter, a miner"
)
AWARDS = _pool(
    "the Marlow Prize, the Golden Quill Award, the Harbor Medal, the Silver Lantern Prize, the "
    "Ember Award, the Northwind Prize, the Crescent Medal, the Lighthouse Award, the Saltmere "
    "Prize, the Copper Pen Award, the Evergreen Medal, the Starling Prize"
)
SUBJECTS = _pool(
    "history, law, medicine, chemistry, music, painting, philosophy, mathematics, biology, "
    "economics, architecture, linguistics"
)
HOBBIES = _pool(
    "sailing, chess, gardening, birdwatching, pottery, fencing, cycling, baking, rock climbing, "
    "knitting, astronomy, fishing"
)
TITLE_ADJECTIVES = _pool(
    "Silent, Broken, Hidden, Golden, Last, Burning, Frozen, Quiet, Wandering, Forgotten, "
    "Crimson, Distant, Hollow, Endless, Paper, Glass, Iron, Velvet, Midnight, Salt, Amber, "
    "Winter, Secret, Stolen, Silver, Painted, Sleeping, Lonely, Restless, Shattered"
)
TITLE_NOUNS = _pool(
    "Harbor, Garden, Lantern, River, Kingdom, Letter, Orchard, Mirror, Bridge, Tower, Voyage, "
    "Compass, Forest, Island, Clock, Crown, Feather, Map, Storm, Valley, Door, Window, Song, "
    "Road, Shore, Candle, Archive, Meadow, Citadel, Tide"
)
