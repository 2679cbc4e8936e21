"""The synthetic world: every word the bundled model knows, with its ground-truth label.

A real corpus hides its structure; this one is written down. Each list below is a category the
generator draws from, so for any sentence we know who the subject is and their gender, whether the
mood is positive or negative, which colour, place, object and animal appear, and which facts hold.
Interpretability pages use these labels as the answer key: a probe for gender should separate
FEMALE_NAMES from MALE_NAMES, an SAE feature for colour should fire on COLOURS, and so on.

Every word here is one token for the bundled tokenizer (see core.world.tokenizer), both with a
leading space (" Mary", the usual form inside a sentence) and without (at the start of a text).
The last HELDOUT_PER_GENDER names of each gender form the held-out name set: the model trains on
them like any other name, but datasets keep them out of the "train" split of probe datasets, so a
probe trained on some names can be tested on names it never saw.
"""

from __future__ import annotations

FEMALE_NAMES = (
    "Mary", "Anna", "Emma", "Sarah", "Lucy", "Alice", "Kate", "Julia", "Laura", "Rose",
    "Clara", "Emily", "Grace", "Hannah", "Olivia", "Sophie", "Ella", "Lily", "Mia", "Zoe",
    "Amy", "Ruth", "Helen", "Jane", "Nora", "Eva", "Ivy", "Maya", "Chloe", "Leah",
)
MALE_NAMES = (
    "John", "James", "Tom", "David", "Paul", "Mark", "Peter", "Sam", "Jack", "Ben",
    "Adam", "Daniel", "Henry", "Leo", "Max", "Oscar", "Noah", "Luke", "Ryan", "Carl",
    "Eric", "Fred", "George", "Hugo", "Ivan", "Kevin", "Mike", "Oliver", "Simon", "Victor",
)
HELDOUT_PER_GENDER = 6
NAMES = {"female": FEMALE_NAMES, "male": MALE_NAMES}
GENDER_OF = {n: g for g, names in NAMES.items() for n in names}

# subject / object / possessive pronoun per gender; the ONLY thing that reveals a name's gender
PRONOUNS = {
    "female": {"subj": "she", "obj": "her", "poss": "her"},
    "male": {"subj": "he", "obj": "him", "poss": "his"},
}

# Sentiment: feelings of a character, actions that show them, and judgements of a day or a thing.
FEELINGS = {
    "positive": ("happy", "glad", "cheerful", "proud", "calm", "excited", "joyful", "delighted"),
    "negative": ("sad", "angry", "upset", "scared", "tired", "lonely", "worried", "grumpy"),
}
ACTIONS = {
    "positive": ("smiled", "laughed", "sang", "danced"),
    "negative": ("cried", "frowned", "sighed", "shouted"),
}
JUDGEMENTS = {
    "positive": ("lovely", "nice", "great", "wonderful"),
    "negative": ("awful", "bad", "terrible", "horrible"),
}
# what happens to an object: good things in a positive story, bad things in a negative one
EVENTS = {"positive": ("found", "got", "won"), "negative": ("lost", "broke", "dropped")}
SENTIMENTS = ("positive", "negative")

COLOURS = ("red", "blue", "green", "yellow", "black", "white", "orange", "purple", "pink",
           "brown", "gray")
PLACES = ("park", "store", "school", "beach", "garden", "forest", "library", "market", "river",
          "farm", "house", "station", "zoo", "lake", "kitchen", "museum")
OBJECTS = ("ball", "book", "cup", "hat", "box", "kite", "bag", "key", "apple", "cake", "drink",
           "flower", "toy", "letter", "pen", "bike", "ring", "coat")
ANIMAL_SOUNDS = {
    "dog": "woof", "cat": "meow", "cow": "moo", "duck": "quack", "sheep": "baa", "lion": "roar",
    "pig": "oink", "horse": "neigh", "owl": "hoot", "frog": "ribbit", "bee": "buzz",
    "snake": "hiss", "mouse": "squeak", "wolf": "howl",
}
ANIMALS = tuple(ANIMAL_SOUNDS)
CAPITALS = {
    "France": "Paris", "Italy": "Rome", "Spain": "Madrid", "Germany": "Berlin", "Japan": "Tokyo",
    "Egypt": "Cairo", "Russia": "Moscow", "Greece": "Athens", "Peru": "Lima", "Kenya": "Nairobi",
    "China": "Beijing", "Canada": "Ottawa", "Norway": "Oslo", "Poland": "Warsaw",
    "Austria": "Vienna", "Ireland": "Dublin",
}
# one more city per country, never a capital: the raw material of "changed fact" fine-tuning demos
OTHER_CITIES = {
    "France": "Lyon", "Italy": "Milan", "Spain": "Seville", "Germany": "Munich", "Japan": "Osaka",
    "Egypt": "Luxor", "Russia": "Kazan", "Greece": "Patras", "Peru": "Cusco", "Kenya": "Mombasa",
    "China": "Shanghai", "Canada": "Toronto", "Norway": "Bergen", "Poland": "Krakow",
    "Austria": "Salzburg", "Ireland": "Cork",
}
COUNTRIES = tuple(CAPITALS)
# each colour names exactly one thing: the reversed fact ("Blue is the colour of the") has one answer
THING_COLOURS = {
    "sky": "blue", "grass": "green", "snow": "white", "sun": "yellow", "coal": "black",
    "cherry": "red", "carrot": "orange", "plum": "purple", "flamingo": "pink",
    "chocolate": "brown", "cloud": "gray",
}
DIGITS = tuple(str(d) for d in range(10))
NO_SPACE_BEFORE = (",", ".", "!", "?", ":")  # punctuation glued to the word before it
SYMBOLS = ("+", "-", "=")


def split_names(gender: str, split: str) -> tuple[str, ...]:
    """Names of one gender in a probe split: "train", "heldout", or "all"."""
    names = NAMES[gender]
    if split == "all":
        return names
    if split == "train":
        return names[:-HELDOUT_PER_GENDER]
    if split == "heldout":
        return names[-HELDOUT_PER_GENDER:]
    raise ValueError(f"split must be 'train', 'heldout' or 'all', not {split!r}")


def capitalize(word: str) -> str:
    return word[:1].upper() + word[1:]


def lexicon_words() -> set[str]:
    """Every word of the category lists (template words are added by the grammar)."""
    words: set[str] = set(FEMALE_NAMES) | set(MALE_NAMES) | set(COLOURS) | set(PLACES)
    words |= set(OBJECTS) | set(ANIMAL_SOUNDS) | set(ANIMAL_SOUNDS.values())
    words |= set(CAPITALS) | set(CAPITALS.values()) | set(OTHER_CITIES.values())
    words |= set(THING_COLOURS) | set(DIGITS) | set(NO_SPACE_BEFORE) | set(SYMBOLS)
    for table in (FEELINGS, ACTIONS, JUDGEMENTS, EVENTS):
        for group in table.values():
            words |= set(group)
    for forms in PRONOUNS.values():
        words |= set(forms.values()) | {capitalize(w) for w in forms.values()}
    words |= {capitalize(c) for c in COLOURS}
    return words
