"""What the demo instance is about: its communities, people, posts and conversations."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Person:
    name: str  # the handle's first label
    display: str
    bio: str
    color: tuple[int, int, int]


@dataclass(frozen=True)
class Community:
    name: str  # also the handle: c-<name>
    display: str
    description: str
    color: tuple[int, int, int]
    rules: tuple[str, ...] = ()


@dataclass(frozen=True)
class Post:
    community: str
    author: str
    title: str
    content: str
    images: int = 0  # how many pictures (0: none)
    link: tuple[str, str, str] | None = None  # (url, title, description) for a link card
    # (author, text, replies) trees
    comments: tuple[tuple[str, str, tuple[object, ...]], ...] = ()
    upvoters: tuple[str, ...] = ()
    downvoters: tuple[str, ...] = ()


PEOPLE = (
    Person("alice", "Alice Moreau", "Grows tomatoes on a balcony far too small.", (214, 90, 76)),
    Person("bob", "Bob Okafor", "Fixes old consoles, breaks new ones.", (62, 120, 201)),
    Person("carol", "Carol Nguyen", "Reporter for the neighbourhood paper.", (95, 160, 90)),
    Person("dave", "Dave Lindqvist", "Speedruns games nobody remembers.", (160, 110, 200)),
    Person("erin", "Erin Walsh", "Compost evangelist.", (220, 170, 60)),
    Person("frank", "Frank Osei", "Here for the comments.", (80, 170, 180)),
)

COMMUNITIES = (
    Community(
        "gardening",
        "Gardening",
        "Balconies, allotments and backyards: what grows, what doesn't, and why.",
        (70, 140, 70),
        ("Be kind to beginners", "Say where you garden (climate matters)"),
    ),
    Community(
        "retrogames",
        "Retro Games",
        "Cartridges, CRTs and the games we still play.",
        (120, 80, 170),
        ("No piracy links",),
    ),
    Community(
        "localnews",
        "Local News",
        "What is happening around here, reported by neighbours.",
        (60, 110, 170),
    ),
)

POSTS = (
    Post(
        "gardening",
        "alice",
        "First ripe tomatoes of the year!",
        "Three months on a north-facing balcony and they finally turned red.",
        images=2,
        comments=(
            ("erin", "Beautiful. What variety?", (("alice", "Sungold, cherry-sized.", ()),)),
            (
                "frank",
                "North-facing and still ripe? Teach us.",
                (
                    ("alice", "Reflective board behind the pots, honestly.", ()),
                    ("erin", "Same trick works for peppers.", ()),
                ),
            ),
        ),
        upvoters=("erin", "frank", "bob", "carol"),
    ),
    Post(
        "gardening",
        "erin",
        "Hot composting in winter: a guide",
        "The pile needs mass, moisture and a lid. Here's what worked for me.",
        link=(
            "https://example.org/guides/winter-composting",
            "Winter composting, step by step",
            "How to keep a pile above 50 °C when it freezes outside.",
        ),
        comments=(("alice", "Saving this for November.", ()),),
        upvoters=("alice", "frank"),
    ),
    Post(
        "gardening",
        "frank",
        "Why are my basil leaves turning black?",
        "Indoors, south window, watered every other day.",
        comments=(
            (
                "erin",
                "Cold damage: the window glass gets cold at night.",
                (("frank", "That's it, the sill is freezing. Thanks!", ()),),
            ),
        ),
        upvoters=("erin",),
    ),
    Post(
        "retrogames",
        "bob",
        "Recapped a 1991 console this weekend",
        "Before and after: every electrolytic capacitor replaced, picture noise gone.",
        images=3,
        comments=(
            (
                "dave",
                "Clean work. Did you do the audio board too?",
                (("bob", "Yes, all 14 caps.", ()),),
            ),
            ("frank", "I have one in the attic, maybe it's time.", ()),
        ),
        upvoters=("dave", "frank", "alice"),
    ),
    Post(
        "retrogames",
        "dave",
        "New personal best on the forest stage",
        "Sub-two minutes at last. The route notes are in the link.",
        link=(
            "https://example.org/runs/forest-stage-route",
            "Forest stage route notes",
            "Frame-perfect jumps explained, with a practice save.",
        ),
        comments=(("bob", "Congrats! The second skip is nasty.", ()),),
        upvoters=("bob",),
        downvoters=("frank",),
    ),
    Post(
        "retrogames",
        "frank",
        "CRT or upscaler?",
        "Space is short. Is an upscaler good enough for 240p games?",
        comments=(
            (
                "bob",
                "A good upscaler is fine; a cheap one adds lag.",
                (("dave", "For speedruns, CRT every time.", (("frank", "Noted!", ()),)),),
            ),
        ),
        upvoters=("bob", "dave"),
    ),
    Post(
        "localnews",
        "carol",
        "The library reopens on Monday",
        "After eight months of works: new reading room, longer hours on Saturdays.",
        images=1,
        comments=(
            ("alice", "Finally! The old roof was leaking on the comics.", ()),
            ("dave", "Longer Saturdays are the real news.", ()),
        ),
        upvoters=("alice", "dave", "erin", "bob", "frank"),
    ),
    Post(
        "localnews",
        "carol",
        "Council votes on the new bike lanes",
        "The meeting is on Thursday; the plan is public.",
        link=(
            "https://example.org/council/bike-lane-plan",
            "Bike lane plan: public consultation",
            "Maps and timelines for the three proposed routes.",
        ),
        comments=(
            (
                "bob",
                "Route B removes parking on my street.",
                (("carol", "There's a session for residents on Wednesday.", ()),),
            ),
        ),
        upvoters=("alice", "erin"),
        downvoters=("bob",),
    ),
)

SUBSCRIPTIONS = {
    "alice": ("gardening", "localnews"),
    "bob": ("retrogames", "localnews"),
    "carol": ("localnews",),
    "dave": ("retrogames",),
    "erin": ("gardening", "localnews"),
    "frank": ("gardening", "retrogames", "localnews"),
}


@dataclass
class Seeded:
    """What the seeding created, for the instructions and the checks."""

    passwords: dict[str, str] = field(default_factory=dict)  # handle -> password
    dids: dict[str, str] = field(default_factory=dict)  # handle -> DID
    communities: dict[str, str] = field(default_factory=dict)  # name -> DID
    posts: list[str] = field(default_factory=list)  # URIs
    comments: int = 0
    votes: int = 0
    post_votes: int = 0  # of the votes, those on posts
    images: int = 0
    links: int = 0
