"""The words the story generator may use, grouped by the slot they fill.

Each list is ordered from most to least frequent: the generator gives the word of rank ``r``
a weight ``1 / (r + 1)`` (Zipf's law), except for the answers of the facts a story asks about
later (colours, landmarks, pet names), which are uniform so that guessing from frequency alone
scores exactly ``1 / len(list)``.

Two rules keep every story's derivation unique (see :mod:`course_lib.data.stories`):
every entry is a single word, and no word belongs to two groups or to the fixed words of the
templates (:data:`TEMPLATE_WORDS`). ``Lexicon.check()`` enforces both.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

FEMALE_NAMES = (
    "Mia", "Lily", "Emma", "Sara", "Anna", "Lucy", "Zoe", "Ella", "Ruby", "Grace",
    "Chloe", "Amy", "Nora", "Ivy", "Rosa", "Maya", "Hannah", "Julia", "Clara", "Alice",
    "Olivia", "Sophie", "Leah", "Nina", "Eva", "Luna", "Isla", "Daisy", "Freya", "Hazel",
    "Kate", "Molly", "Poppy", "Tara", "Vera", "Wendy", "Yara", "Amira", "Elsa", "Greta",
)
MALE_NAMES = (
    "Tom", "Ben", "Sam", "Leo", "Jack", "Max", "Noah", "Finn", "Omar", "Theo",
    "Adam", "Luke", "Ryan", "Owen", "Hugo", "Eli", "Ivan", "Jonas", "Kai", "Liam",
    "Milo", "Nico", "Oscar", "Paul", "Ravi", "Simon", "Tariq", "Victor", "Will", "Yusuf",
    "Zack", "Arlo", "Bruno", "Carl", "Dan", "Ezra", "Felix", "George", "Henry", "Jonah",
)
PET_NAMES = (
    "Biscuit", "Pepper", "Coco", "Rocky", "Bella", "Buddy", "Shadow", "Pickle",
    "Ziggy", "Muffin", "Bubbles", "Whiskers", "Patch", "Sunny", "Bramble", "Toffee",
)
FEMALE_ROLES = ("girl", "woman", "princess", "queen")
MALE_ROLES = ("boy", "man", "prince", "king")
NEUTRAL_ROLES = (
    "farmer", "baker", "teacher", "doctor", "painter", "sailor", "singer", "dancer",
    "pilot", "artist", "explorer", "inventor", "gardener", "fisher", "builder", "nurse",
)
PERSON_ADJECTIVES = (
    "little", "kind", "brave", "shy", "clever", "curious", "gentle", "funny",
    "young", "friendly", "quiet", "busy", "cheerful", "honest", "polite", "lazy",
)
COLOURS = (
    "red", "blue", "green", "yellow", "purple", "orange",
    "pink", "brown", "black", "white", "grey", "silver",
)
TOYS = (
    "ball", "kite", "hat", "bike", "doll", "drum", "scarf", "balloon", "bag", "coat",
    "car", "robot", "blanket", "bucket", "pencil", "jumper", "wagon", "umbrella", "cup", "lamp",
)
DWELLINGS = (
    "house", "cottage", "cabin", "hut", "flat", "tower", "tent", "farmhouse",
    "treehouse", "caravan", "palace", "houseboat",
)
HOME_ADJECTIVES = ("cosy", "tiny", "tall", "crooked", "narrow", "tidy", "grand", "humble")
LANDMARKS = (
    "river", "lake", "sea", "hill", "mountain", "forest", "bridge", "harbour",
    "station", "church", "mill", "meadow", "valley", "lighthouse", "windmill", "pond",
)
PET_KINDS = ("dog", "cat", "rabbit", "hamster", "parrot", "goldfish", "turtle", "pony", "kitten", "puppy")
PLACES = (
    "park", "market", "school", "shop", "library", "garden", "zoo", "farm", "playground",
    "bakery", "museum", "pool", "beach", "city", "village", "woods", "castle", "fair", "cafe",
    "circus", "kitchen", "barn", "orchard", "island", "theatre", "attic", "hospital", "square",
)
MOTION_VERBS = ("went", "walked", "ran", "hurried", "skipped", "wandered", "cycled", "travelled")
THINGS = (
    "stone", "leaf", "shell", "feather", "coin", "box", "book", "picture", "letter", "flower",
    "key", "map", "basket", "bottle", "candle", "bell", "ribbon", "rope", "egg", "acorn",
    "button", "marble", "puzzle", "card", "nest", "envelope", "jar", "mirror", "kettle", "spoon",
    "brush", "ring", "sticker", "crayon", "whistle", "lantern", "compass", "clock", "pillow", "bowl",
)
THING_ADJECTIVES = (
    "shiny", "small", "big", "soft", "new", "old", "heavy", "round", "smooth", "broken",
    "wooden", "strange", "pretty", "special", "magic", "dusty", "empty", "lovely",
)
THING_VERBS = (
    "found", "made", "drew", "painted", "bought", "carried", "cleaned", "hid", "washed", "fixed",
    "lost", "held", "dropped", "opened", "wrapped", "shared", "noticed", "collected", "sold", "mended",
    "borrowed", "polished", "packed", "decorated",
)
# Each animal does what it does; the verbs of different animals may repeat.
ANIMAL_VERBS = {
    "bird": ("sang", "flew", "chirped"),
    "squirrel": ("jumped", "climbed", "scampered"),
    "fox": ("trotted", "slept", "howled"),
    "owl": ("hooted", "flew", "slept"),
    "bee": ("buzzed", "flew"),
    "butterfly": ("flew", "danced"),
    "duck": ("swam", "quacked", "waddled"),
    "frog": ("jumped", "croaked", "swam"),
    "cow": ("mooed", "slept", "grazed"),
    "sheep": ("grazed", "slept"),
    "goat": ("jumped", "grazed", "climbed"),
    "horse": ("galloped", "neighed", "grazed"),
    "hen": ("clucked", "pecked"),
    "hedgehog": ("slept", "sniffed"),
    "snail": ("crawled", "slept"),
    "deer": ("leapt", "grazed"),
    "crow": ("cawed", "flew"),
    "mouse": ("squeaked", "scurried", "nibbled"),
    "bear": ("slept", "growled", "climbed"),
    "elephant": ("trumpeted", "splashed", "slept"),
    "ant": ("crawled", "marched"),
    "robin": ("sang", "hopped"),
}
# Scenery and what can be said of it: "The sun was bright."
SCENERY = {
    "sun": ("bright", "warm", "hot"),
    "sky": ("clear", "dark", "cloudy"),
    "wind": ("cold", "strong", "loud"),
    "air": ("fresh", "warm", "cold"),
    "rain": ("cold", "light", "steady"),
    "grass": ("wet", "dry", "long"),
    "road": ("long", "wet", "muddy"),
    "water": ("cold", "still", "clear"),
    "moon": ("bright", "full"),
    "snow": ("deep", "fresh", "thick"),
}
FEELINGS = (
    "happy", "sad", "tired", "proud", "excited", "sleepy", "hungry", "scared",
    "angry", "lonely", "surprised", "bored", "glad", "worried", "calm",
)
# Food with the determiner it takes: "some bread", "an apple".
FOODS = (
    ("some", "bread"), ("an", "apple"), ("some", "soup"), ("a", "banana"), ("some", "cheese"),
    ("a", "sandwich"), ("some", "rice"), ("a", "pear"), ("some", "porridge"), ("a", "carrot"),
    ("some", "honey"), ("a", "cookie"), ("some", "pasta"), ("a", "pie"), ("some", "jam"),
    ("a", "muffin"), ("some", "yogurt"), ("a", "plum"), ("some", "grapes"), ("a", "peach"),
    ("some", "cherries"), ("a", "pancake"), ("some", "noodles"), ("a", "biscuit"),
)
MEALS = ("lunch", "breakfast", "dinner", "supper")
DAYPARTS = ("morning", "afternoon", "evening", "night")
WEEKDAYS = ("Monday", "Saturday", "Sunday", "Friday", "Tuesday", "Wednesday", "Thursday")
PAIR_VERBS = ("laughed", "talked", "giggled", "whispered", "chatted", "raced", "waved", "cheered")

# The fixed words of the templates in stories.py: no lexicon entry may be one of them.
TEMPLATE_WORDS = frozenset(
    """
    Once upon a an time , there There was named . had lived in near the What colour that ? It Where
    did live She He she he Its name of and with played to felt ate for some Then Later Soon One That
    After On A An The end good day smiled together very would never forget gave watched home call called
    """.split()
)


def _words(entries: tuple) -> list[str]:
    return [entry[1] if isinstance(entry, tuple) else entry for entry in entries]


@dataclass(frozen=True)
class Lexicon:
    """All word lists of the generator; swap in a small one (:meth:`tiny`) to enumerate every story."""

    female_names: tuple[str, ...] = FEMALE_NAMES
    male_names: tuple[str, ...] = MALE_NAMES
    pet_names: tuple[str, ...] = PET_NAMES
    female_roles: tuple[str, ...] = FEMALE_ROLES
    male_roles: tuple[str, ...] = MALE_ROLES
    neutral_roles: tuple[str, ...] = NEUTRAL_ROLES
    person_adjectives: tuple[str, ...] = PERSON_ADJECTIVES
    colours: tuple[str, ...] = COLOURS
    toys: tuple[str, ...] = TOYS
    dwellings: tuple[str, ...] = DWELLINGS
    home_adjectives: tuple[str, ...] = HOME_ADJECTIVES
    landmarks: tuple[str, ...] = LANDMARKS
    pet_kinds: tuple[str, ...] = PET_KINDS
    places: tuple[str, ...] = PLACES
    motion_verbs: tuple[str, ...] = MOTION_VERBS
    things: tuple[str, ...] = THINGS
    thing_adjectives: tuple[str, ...] = THING_ADJECTIVES
    thing_verbs: tuple[str, ...] = THING_VERBS
    animal_verbs: tuple[tuple[str, tuple[str, ...]], ...] = tuple(ANIMAL_VERBS.items())
    scenery: tuple[tuple[str, tuple[str, ...]], ...] = tuple(SCENERY.items())
    feelings: tuple[str, ...] = FEELINGS
    foods: tuple[tuple[str, str], ...] = FOODS
    meals: tuple[str, ...] = MEALS
    dayparts: tuple[str, ...] = DAYPARTS
    weekdays: tuple[str, ...] = WEEKDAYS
    pair_verbs: tuple[str, ...] = PAIR_VERBS

    @classmethod
    def tiny(cls) -> Lexicon:
        """The smallest lexicon that still reaches every template and every optional word.

        Small enough to enumerate every story of a short story shape by brute force.
        """
        return cls(
            female_names=("Mia",), male_names=("Tom",), pet_names=("Coco", "Rocky"),
            female_roles=("girl",), male_roles=("boy",), neutral_roles=("artist",),
            person_adjectives=("kind",), colours=("red", "orange"), toys=("ball",),
            dwellings=("hut",), home_adjectives=("cosy",), landmarks=("lake", "hill"),
            pet_kinds=("cat",), places=("park",), motion_verbs=("went",),
            things=("egg",), thing_adjectives=("big",), thing_verbs=("found",),
            animal_verbs=(("owl", ("flew",)),), scenery=(("sun", ("warm",)),),
            feelings=("glad",), foods=(("some", "soup"),), meals=("lunch",),
            dayparts=("night",), weekdays=("Monday",), pair_verbs=("laughed",),
        )

    def groups(self) -> dict[str, list[str]]:
        """Every word group by name; animal verbs and scenery adjectives are pooled into one group each."""
        groups: dict[str, list[str]] = {}
        for field in fields(self):
            value = getattr(self, field.name)
            if field.name == "animal_verbs":
                groups["animals"] = [animal for animal, _ in value]
                groups["animal_verbs"] = sorted({verb for _, verbs in value for verb in verbs})
            elif field.name == "scenery":
                groups["scenery"] = [noun for noun, _ in value]
                groups["scenery_adjectives"] = sorted({adjective for _, words in value for adjective in words})
            else:
                groups[field.name] = _words(value)
        return groups

    def check(self) -> None:
        """Raise ``ValueError`` if a word is empty, repeated within a group, shared by two groups,
        equal to a template word, not a single word, or if a group is empty."""
        owner: dict[str, str] = {}
        for group, words in self.groups().items():
            if not words:
                raise ValueError(f"lexicon group {group!r} is empty; every group needs at least one word")
            if len(set(words)) != len(words):
                raise ValueError(f"lexicon group {group!r} repeats a word: {words}")
            for word in words:
                if not word.isalpha():
                    raise ValueError(f"lexicon entry {word!r} in {group!r} must be a single word of letters")
                if word in TEMPLATE_WORDS:
                    raise ValueError(f"lexicon entry {word!r} in {group!r} is also a fixed word of the templates")
                if word in owner and owner[word] != group:
                    raise ValueError(f"word {word!r} is in both {owner[word]!r} and {group!r}; groups must be disjoint")
                owner[word] = group
        if len(self.female_names) + len(self.male_names) < 2:
            raise ValueError("the lexicon needs at least two names (stories have a second character)")
        for verbs in (verbs for _, verbs in self.animal_verbs):
            if not verbs:
                raise ValueError("every animal needs at least one verb")
        for determiner, _ in self.foods:
            if determiner not in ("a", "an", "some"):
                raise ValueError(f"food determiners must be 'a', 'an' or 'some', got {determiner!r}")

    def vocabulary(self) -> set[str]:
        """Every word the lexicon can contribute (template words excluded)."""
        return {word for words in self.groups().values() for word in words}
