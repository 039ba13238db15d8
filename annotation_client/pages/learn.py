"""The Learn page (``/learn``): a breast self-examination guide for patients and students.

The page is static: it has no callbacks and fetches nothing at run time. Its
diagrams are hand-written SVG files in ``assets/learn/``, served by Dash from the
install, and the organisations it cites are plain hyperlinks.

Section anchors (``SECTIONS``) and references (``REFERENCES``) are module
constants so the table of contents, the inline citations and the tests all use
the same names.
"""

from __future__ import annotations

from typing import NamedTuple

import dash
import dash_bootstrap_components as dbc
from dash import html

dash.register_page(
    __name__,
    path="/learn",
    name="Learn",
    title="Breast self-examination — SonoTrace",
    description=(
        "A breast self-examination guide for patients and students: when and how to check, "
        "what changes to report, risk factors and when to see a doctor."
    ),
    order=90,
)


class Section(NamedTuple):
    """One top-level section: its anchor id and its heading."""

    anchor: str
    heading: str


class Reference(NamedTuple):
    """One cited source: a short key used by :func:`_cite`, who published it, and where."""

    key: str
    organisation: str
    title: str
    url: str


SECTIONS = (
    Section("learn-when", "When to examine"),
    Section("learn-look", "Step 1: look"),
    Section("learn-feel", "Step 2: feel"),
    Section("learn-positions", "Lying down and standing"),
    Section("learn-changes", "Changes to report"),
    Section("learn-risk", "Risk factors"),
    Section("learn-early", "Why early detection matters"),
    Section("learn-doctor", "When to see a doctor"),
    Section("learn-students", "Notes for students"),
    Section("learn-references", "References"),
)

REFERENCES = (
    Reference(
        "acs",
        "American Cancer Society",
        "American Cancer Society recommendations for the early detection of breast cancer",
        "https://www.cancer.org/cancer/types/breast-cancer/screening-tests-and-early-detection/"
        "american-cancer-society-recommendations-for-the-early-detection-of-breast-cancer.html",
    ),
    Reference(
        "acs-survival",
        "American Cancer Society",
        "Breast cancer survival rates",
        "https://www.cancer.org/cancer/types/breast-cancer/understanding-a-breast-cancer-diagnosis/"
        "breast-cancer-survival-rates.html",
    ),
    Reference(
        "nbcf",
        "National Breast Cancer Foundation",
        "Breast self-exam",
        "https://www.nationalbreastcancer.org/breast-self-exam/",
    ),
    Reference(
        "bco",
        "Breastcancer.org",
        "Breast self-exam (BSE)",
        "https://www.breastcancer.org/screening-testing/breast-self-exam-bse",
    ),
    Reference(
        "mayo",
        "Mayo Clinic",
        "Breast exam for breast awareness",
        "https://www.mayoclinic.org/tests-procedures/breast-exam/about/pac-20393237",
    ),
    Reference(
        "nhs",
        "NHS (UK National Health Service)",
        "Breast cancer in women: symptoms",
        "https://www.nhs.uk/conditions/breast-cancer-in-women/symptoms/",
    ),
    Reference(
        "nhs-screening",
        "NHS (UK National Health Service)",
        "Breast screening (mammogram)",
        "https://www.nhs.uk/conditions/breast-screening-mammogram/",
    ),
    Reference(
        "cdc",
        "Centers for Disease Control and Prevention (CDC)",
        "Breast cancer risk factors",
        "https://www.cdc.gov/breast-cancer/risk-factors/index.html",
    ),
    Reference(
        "who",
        "World Health Organization",
        "Breast cancer: fact sheet",
        "https://www.who.int/news-room/fact-sheets/detail/breast-cancer",
    ),
    Reference(
        "uspstf",
        "U.S. Preventive Services Task Force",
        "Breast cancer: screening (final recommendation, 2024)",
        "https://www.uspreventiveservicestaskforce.org/uspstf/recommendation/"
        "breast-cancer-screening",
    ),
    Reference(
        "uspstf-2009",
        "Annals of Internal Medicine",
        "U.S. Preventive Services Task Force. Screening for breast cancer: U.S. Preventive "
        "Services Task Force recommendation statement. 2009;151(10):716-26",
        "https://doi.org/10.7326/0003-4819-151-10-200911170-00008",
    ),
    Reference(
        "cochrane",
        "Cochrane Database of Systematic Reviews",
        "Kösters JP, Gøtzsche PC. Regular self-examination or clinical examination for early "
        "detection of breast cancer (CD003373)",
        "https://doi.org/10.1002/14651858.CD003373",
    ),
    Reference(
        "shanghai",
        "Journal of the National Cancer Institute",
        "Thomas DB et al. Randomized trial of breast self-examination in Shanghai: final "
        "results. 2002;94(19):1445-57",
        "https://doi.org/10.1093/jnci/94.19.1445",
    ),
)

_REF_NUMBER = {ref.key: number for number, ref in enumerate(REFERENCES, start=1)}
_HEADING = {section.anchor: section.heading for section in SECTIONS}


def _ref_anchor(key: str) -> str:
    return f"learn-ref-{key}"


def _cite(*keys: str) -> html.Sup:
    """Inline citation: bracketed reference numbers linking to the References list."""
    unknown = [key for key in keys if key not in _REF_NUMBER]
    if unknown:
        raise ValueError(f"keys: unknown reference(s) {unknown}")
    links: list = []
    for i, key in enumerate(sorted(set(keys), key=_REF_NUMBER.__getitem__)):
        if i:
            links.append(",")
        number, ref = _REF_NUMBER[key], REFERENCES[_REF_NUMBER[key] - 1]
        links.append(
            html.A(
                str(number),
                href=f"#{_ref_anchor(key)}",
                title=ref.organisation,
                # A screen reader's list of links heard "1", "9": the source is named.
                **{"aria-label": f"Reference {number}: {ref.organisation}"},
                className="learn-cite",
            )
        )
    return html.Sup(["[", *links, "]"])


def _figure(asset: str, alt: str, caption, *, width: int, height: int) -> html.Figure:
    """A diagram from ``assets/learn/`` with alt text and a visible caption.

    ``width`` and ``height`` are the SVG's own viewBox size; they let the browser
    reserve the right aspect ratio before the file arrives (CSS scales it down).
    """
    return html.Figure(
        [
            html.Img(
                src=dash.get_asset_url(f"learn/{asset}"),
                alt=alt,
                width=width,
                height=height,
                className="learn-figure",
            ),
            html.Figcaption(caption),
        ],
        className="learn-fig",
    )


def _section(anchor: str, *children) -> html.Section:
    heading_id = f"{anchor}-heading"
    return html.Section(
        [html.H2(_HEADING[anchor], id=heading_id, className="h3 mt-2 mb-3"), *children],
        id=anchor,
        className="learn-section mb-5",
        **{"aria-labelledby": heading_id},
    )


def _card(title: str, body: list, *, color: str | None = None) -> dbc.Card:
    return dbc.Card(
        [
            dbc.CardHeader(html.H3(title, className="h6 mb-0 fw-semibold")),
            dbc.CardBody(body),
        ],
        color=color,
        outline=bool(color),
        class_name="h-100",
    )


def _header() -> list:
    return [
        html.H1("Breast self-examination", className="mt-3 mb-2"),
        html.P(
            "A short guide for patients and students: when and how to check your breasts, "
            "which changes to report, who is at higher risk, and when to see a doctor.",
            className="lead",
        ),
        dbc.Alert(
            [
                html.Strong("Educational information, not medical advice. "),
                "This page does not replace a consultation with a doctor or nurse, a clinical "
                "breast examination, or screening mammography. If you notice a change or are "
                "worried, contact a health professional.",
            ],
            color="warning",
            class_name="learn-disclaimer",
            id="learn-disclaimer",
        ),
        dbc.Card(
            dbc.CardBody(
                [
                    html.H2("In short", className="h5"),
                    html.Ul(
                        [
                            html.Li(
                                [
                                    html.Strong("Know what is normal for you"),
                                    " — how your breasts usually look and feel. This is "
                                    "called being breast aware.",
                                ]
                            ),
                            html.Li(
                                "If you choose a regular self-exam, look and feel in the same "
                                "way each time, about once a month; being familiar with your "
                                "breasts at any time counts too."
                            ),
                            html.Li(
                                "Report any new or persisting change promptly. Most changes are "
                                "not cancer, but they need to be checked."
                            ),
                            html.Li(
                                "Self-examination adds to screening mammograms and clinical "
                                "examinations; it does not replace them."
                            ),
                        ],
                        className="mb-0",
                    ),
                ]
            ),
            class_name="mb-4 learn-summary",
        ),
    ]


def _toc() -> dbc.Card:
    return dbc.Card(
        [
            dbc.CardHeader(html.H2("Contents", className="h6 mb-0 fw-semibold")),
            dbc.CardBody(
                html.Nav(
                    html.Ol(
                        [
                            html.Li(html.A(section.heading, href=f"#{section.anchor}"))
                            for section in SECTIONS
                        ],
                        className="mb-0 ps-3",
                    ),
                    **{"aria-label": "Contents"},
                ),
                class_name="py-2",
            ),
        ],
        id="learn-toc",
        class_name="learn-toc mb-4",
    )


def _when() -> html.Section:
    return _section(
        "learn-when",
        dbc.Row(
            [
                dbc.Col(
                    _card(
                        "Be breast aware",
                        [
                            html.P(
                                [
                                    "Get to know how your breasts normally look and feel, so "
                                    "that you notice when something changes. Breasts change "
                                    "with the menstrual cycle, pregnancy, breastfeeding and "
                                    "age, so what matters is a change from ",
                                    html.Em("your"),
                                    " normal. ",
                                    _cite("nhs", "acs"),
                                ]
                            ),
                            html.P(
                                [
                                    "Breast cancer can also affect men (about 0.5–1% of cases), "
                                    "so anyone who finds a lump should have it checked. In men "
                                    "the usual sign is a painless lump under or near the nipple; "
                                    "a nipple that turns inwards, discharge or a sore on it "
                                    "matter too. Men are at higher risk with age, a BRCA2 "
                                    "variant or breast cancer in the family, and conditions "
                                    "that raise oestrogen (such as Klinefelter syndrome). ",
                                    _cite("who"),
                                ],
                                className="mb-0",
                            ),
                        ],
                    ),
                    xs=12,
                    md=6,
                    class_name="mb-3",
                ),
                dbc.Col(
                    _card(
                        "If you choose a regular self-exam",
                        [
                            html.Ul(
                                [
                                    html.Li(
                                        [
                                            html.Strong("Once a month"),
                                            " is enough; use the same method each time. ",
                                            _cite("nbcf"),
                                        ]
                                    ),
                                    html.Li(
                                        [
                                            html.Strong("If you have periods:"),
                                            " a few days after your period ends, when breasts "
                                            "are least swollen and tender. Before a period they "
                                            "can feel lumpy. ",
                                            _cite("mayo", "nhs"),
                                        ]
                                    ),
                                    html.Li(
                                        [
                                            html.Strong("After menopause, or without periods:"),
                                            " pick the same day every month, for example the "
                                            "first of the month. ",
                                            _cite("bco"),
                                        ]
                                    ),
                                    html.Li(
                                        "Ask a doctor or nurse to show you the technique the "
                                        "first time."
                                    ),
                                ],
                                className="mb-0 ps-3",
                            )
                        ],
                    ),
                    xs=12,
                    md=6,
                    class_name="mb-3",
                ),
            ]
        ),
    )


def _look() -> html.Section:
    return _section(
        "learn-look",
        dbc.Row(
            [
                dbc.Col(
                    _figure(
                        "mirror-positions.svg",
                        "Four outline figures in front of a mirror: arms at the sides, hands "
                        "pressed on the hips, arms raised above the head, and leaning forward.",
                        "The four mirror positions.",
                        width=540,
                        height=700,
                    ),
                    xs=12,
                    md=6,
                    class_name="mb-3",
                ),
                dbc.Col(
                    [
                        html.P(
                            [
                                "Undress to the waist and stand in front of a mirror in good "
                                "light. Look at both breasts in each of these positions: ",
                                _cite("nbcf", "bco"),
                            ]
                        ),
                        html.Ol(
                            [
                                html.Li([html.Strong("Arms at your sides"), ", relaxed."]),
                                html.Li(
                                    [
                                        html.Strong("Hands on your hips"),
                                        ", pressing firmly to tighten the chest muscles.",
                                    ]
                                ),
                                html.Li([html.Strong("Arms raised"), " high above your head."]),
                                html.Li(
                                    [
                                        html.Strong("Leaning forward"),
                                        " from the waist, so the breasts hang freely.",
                                    ]
                                ),
                            ],
                            className="ps-3",
                        ),
                        html.P("In each position, look for:", className="mb-1"),
                        html.Ul(
                            [
                                html.Li("a change in size, shape or outline;"),
                                html.Li(
                                    "skin that is dimpled, puckered, bulging, red, swollen or "
                                    "looks like orange peel;"
                                ),
                                html.Li(
                                    "a nipple that has changed position, turned inwards, or "
                                    "has a rash or fluid coming from it."
                                ),
                            ],
                            className="ps-3",
                        ),
                        html.P(
                            "It is normal for the two breasts to differ a little in size and "
                            "shape. You are looking for something new, especially on one side.",
                            className="text-body-secondary",
                        ),
                    ],
                    xs=12,
                    md=6,
                ),
            ]
        ),
    )


def _feel() -> html.Section:
    return _section(
        "learn-feel",
        html.P(
            [
                "Feeling finds what looking cannot. Use the same technique lying down and "
                "standing (next section). ",
                _cite("acs", "nbcf", "bco"),
            ]
        ),
        dbc.Row(
            [
                dbc.Col(
                    [
                        _figure(
                            "finger-pads.svg",
                            "An open hand seen from the palm side; the flat pads of the index, "
                            "middle and ring fingers are highlighted.",
                            "Use the flat pads of the three middle fingers, kept together.",
                            width=440,
                            height=380,
                        ),
                        html.Ul(
                            [
                                html.Li(
                                    [
                                        html.Strong("Finger pads, not tips:"),
                                        " the flat top third of the index, middle and ring "
                                        "fingers, held together.",
                                    ]
                                ),
                                html.Li(
                                    [
                                        html.Strong("Small circles"),
                                        " about the size of a coin at each spot, sliding to "
                                        "the next spot without lifting the fingers.",
                                    ]
                                ),
                            ],
                            className="ps-3",
                        ),
                    ],
                    xs=12,
                    md=6,
                    class_name="mb-3",
                ),
                dbc.Col(
                    [
                        _figure(
                            "pressure-levels.svg",
                            "Cross-section from the skin to the ribs with three fingers "
                            "pressing: light pressure reaches just under the skin, medium the "
                            "middle of the breast, firm the tissue near the chest wall.",
                            "Light, medium and firm pressure reach different depths.",
                            width=560,
                            height=350,
                        ),
                        html.Ul(
                            [
                                html.Li(
                                    [
                                        html.Strong("Three pressures at every spot:"),
                                        " light for the tissue just under the skin, medium "
                                        "for the middle, and firm for the deep tissue close "
                                        "to the ribs.",
                                    ]
                                ),
                                html.Li(
                                    "A firm ridge along the lower curve of each breast is normal."
                                ),
                            ],
                            className="ps-3",
                        ),
                    ],
                    xs=12,
                    md=6,
                    class_name="mb-3",
                ),
                dbc.Col(
                    [
                        _figure(
                            "exam-area.svg",
                            "Outline torso with a dashed box on one side marking the area to "
                            "examine, from the collarbone to the bra line and from the middle "
                            "of the armpit to the middle of the breastbone.",
                            "Breast tissue reaches up to the collarbone and into the armpit.",
                            width=640,
                            height=420,
                        ),
                        html.P(
                            [
                                html.Strong("Cover the whole area:"),
                                " from the collarbone down to the bra line under the breast, "
                                "and from the middle of the armpit across to the middle of the "
                                "breastbone. Check the armpit itself with your arm only "
                                "slightly raised, so the skin there stays soft.",
                            ]
                        ),
                    ],
                    xs=12,
                    md=6,
                    class_name="mb-3",
                ),
                dbc.Col(
                    [
                        _figure(
                            "search-patterns.svg",
                            "Four diagrams of one breast: up-and-down strips, circles moving "
                            "in towards the nipple, wedges like the spokes of a wheel, and "
                            "small overlapping coin-sized circles along a strip.",
                            "Search patterns. Pick one and use it every time.",
                            width=520,
                            height=560,
                        ),
                        html.P(
                            [
                                html.Strong("Follow a pattern"),
                                " so that no part is missed: up-and-down strips (like mowing a "
                                "lawn), circles from the outside in towards the nipple, or "
                                "wedges. Many guides prefer up-and-down strips because they "
                                "make it easiest to cover everything. ",
                                _cite("bco"),
                            ]
                        ),
                    ],
                    xs=12,
                    md=6,
                    class_name="mb-3",
                ),
            ]
        ),
        dbc.Alert(
            [
                html.Strong("Nipples: "),
                "look for any fluid coming out by itself, and note its colour. Do not squeeze "
                "the nipple: a little fluid when it is squeezed is common and usually normal; "
                "what to have checked is fluid that comes by itself.",
            ],
            color="light",
            class_name="border",
        ),
    )


def _positions() -> html.Section:
    return _section(
        "learn-positions",
        dbc.Row(
            [
                dbc.Col(
                    [
                        html.H3("Lying down", className="h5"),
                        _figure(
                            "lying-down.svg",
                            "An outline person lying on their back on a bed, a folded towel "
                            "under one shoulder, that arm behind the head and the other hand "
                            "feeling the breast.",
                            "Numbers match the steps below.",
                            width=470,
                            height=290,
                        ),
                        html.P(
                            "Lying down spreads the breast evenly over the chest wall, so it "
                            "is the easiest position for feeling deep tissue.",
                        ),
                        html.Ol(
                            [
                                html.Li(
                                    "Lie on your back with a pillow or folded towel under the "
                                    "shoulder of the side you are checking."
                                ),
                                html.Li("Put the arm on that side behind your head."),
                                html.Li(
                                    "With the finger pads of the other hand, examine the whole "
                                    "area using your pattern and all three pressures."
                                ),
                                html.Li("Change sides and repeat."),
                            ],
                            className="ps-3",
                        ),
                    ],
                    xs=12,
                    md=6,
                    class_name="mb-3",
                ),
                dbc.Col(
                    [
                        html.H3("Standing, sitting or in the shower", className="h5"),
                        html.P(
                            [
                                "Many people find it easiest to check in the shower: fingers "
                                "glide over wet, soapy skin. Raise the arm on the side you are "
                                "checking for the breast, lower it a little for the armpit (as "
                                "above), and use the same finger pads, pressures and pattern, "
                                "covering the breast and the armpit. ",
                                _cite("nbcf", "bco"),
                            ]
                        ),
                        html.P(
                            "Whichever position you use, cover the whole area: up to the "
                            "collarbone and into the armpit, where a lot of breast tissue lies."
                        ),
                        dbc.Alert(
                            [
                                html.Strong("Tip: "),
                                "keep a note or a phone reminder of the day you check, and of "
                                "anything you were unsure about, so you can compare next time.",
                            ],
                            color="info",
                        ),
                    ],
                    xs=12,
                    md=6,
                    class_name="mb-3",
                ),
            ]
        ),
    )


_CHANGES = (
    (
        "A new lump, hard knot or thickening",
        " in the breast or armpit, that feels different "
        "from the tissue around it or from the other side.",
    ),
    ("Dimpling, puckering or bulging", " of the skin, or skin that looks like orange peel."),
    (
        "Nipple changes:",
        " a nipple that has turned inwards, changed position or shape, or has "
        "a rash, crusting or itchy, scaly skin.",
    ),
    (
        "Nipple discharge",
        " when you are not breastfeeding, especially if it is bloody or comes "
        "from one nipple only.",
    ),
    ("Swelling", " of all or part of the breast, or in the armpit or around the collarbone."),
    ("Redness, warmth or darkening", " of the skin."),
    ("A change in size or shape", " of one breast."),
    (
        "Pain in one spot that does not go away.",
        " Pain that comes and goes with periods is common and usually harmless.",
    ),
)


def _changes() -> html.Section:
    return _section(
        "learn-changes",
        dbc.Row(
            [
                dbc.Col(
                    _figure(
                        "changes-to-watch.svg",
                        "Eight small diagrams: a lump, skin dimpling, a nipple turned inwards, "
                        "nipple discharge, a rash or redness, a change in size or shape, a lump "
                        "in the armpit, and pain in one spot.",
                        "Changes to watch for.",
                        width=470,
                        height=800,
                    ),
                    xs=12,
                    md=5,
                    class_name="mb-3",
                ),
                dbc.Col(
                    [
                        html.P(
                            [
                                "Report any of these to a doctor, even if your last "
                                "mammogram was normal: ",
                                _cite("nhs", "acs", "cdc"),
                            ]
                        ),
                        html.Ul(
                            [html.Li([html.Strong(lead), rest]) for lead, rest in _CHANGES],
                            className="ps-3",
                        ),
                        dbc.Alert(
                            [
                                html.Strong("Most breast changes are not cancer. "),
                                "Cysts, fibroadenomas and normal hormonal changes are common "
                                "causes. But only an examination, and often imaging, can tell "
                                "them apart, so have every new change checked.",
                            ],
                            color="success",
                        ),
                    ],
                    xs=12,
                    md=7,
                ),
            ]
        ),
    )


def _risk() -> html.Section:
    fixed = [
        ("Being female:", " about 99% of breast cancers occur in women. ", ("who",)),
        ("Getting older:", " most breast cancers are found after age 50. ", ("cdc",)),
        (
            "Family history:",
            " a mother, sister or daughter, or several relatives on either side, with breast "
            "or ovarian cancer. ",
            ("cdc",),
        ),
        ("Inherited gene changes", " such as BRCA1 and BRCA2. ", ("cdc",)),
        (
            "Dense breasts:",
            " more glandular and connective tissue than fat. This raises risk and can hide "
            "a cancer on a mammogram. ",
            ("cdc",),
        ),
        (
            "Previous radiation therapy",
            " to the chest, especially before age 30 (for example for Hodgkin lymphoma). ",
            ("cdc",),
        ),
        (
            "Personal history",
            " of breast cancer or of some non-cancerous breast conditions. ",
            ("cdc",),
        ),
        (
            "Reproductive history:",
            " periods that started before 12, or menopause after 55. ",
            ("cdc",),
        ),
    ]
    changeable = [
        ("Alcohol:", " risk rises with the amount you drink. ", ("cdc", "who")),
        ("Overweight or obesity after menopause. ", "", ("cdc", "who")),
        ("Not being physically active. ", "", ("cdc",)),
        (
            "Hormones:",
            " some forms of menopausal hormone therapy (oestrogen with progestogen) taken for "
            "more than five years, and some oral contraceptives. ",
            ("cdc",),
        ),
        (
            "Pregnancy and breastfeeding:",
            " a first pregnancy after 30, not breastfeeding, or never having a full-term "
            "pregnancy. ",
            ("cdc",),
        ),
        ("Tobacco use. ", "", ("who",)),
    ]

    def items(rows):
        return html.Ul(
            [html.Li([html.Strong(lead), rest, _cite(*keys)]) for lead, rest, keys in rows],
            className="mb-0 ps-3",
        )

    return _section(
        "learn-risk",
        html.P(
            [
                "A risk factor raises the chance of breast cancer; it does not mean you will "
                "get it. About half of breast cancers occur in women with no risk factor other "
                "than being female and over 40, so everyone should be breast aware. ",
                _cite("who"),
            ]
        ),
        dbc.Row(
            [
                dbc.Col(
                    _card("Factors you cannot change", [items(fixed)]),
                    xs=12,
                    md=6,
                    class_name="mb-3",
                ),
                dbc.Col(
                    _card("Factors you can influence", [items(changeable)]),
                    xs=12,
                    md=6,
                    class_name="mb-3",
                ),
            ]
        ),
        html.P(
            [
                "If you may be at higher risk (a strong family history, a known gene change, or "
                "chest radiation when young), ask your doctor whether you should start "
                "screening earlier or have extra tests such as MRI. ",
                _cite("acs"),
            ]
        ),
    )


def _early() -> html.Section:
    return _section(
        "learn-early",
        dbc.Row(
            [
                dbc.Col(
                    [
                        html.P(
                            [
                                "Breast cancer is the most common cancer in women worldwide: "
                                "in 2022 about 2.3 million women were diagnosed and 670,000 "
                                "died of it. ",
                                _cite("who"),
                            ]
                        ),
                        html.P(
                            [
                                "Cancers found while they are small and still confined to the "
                                "breast are easier to treat, often with less extensive "
                                "treatment. In the United States, five-year relative survival "
                                "is about 99% when breast cancer is found while localised to "
                                "the breast, about 87% once it has reached nearby lymph nodes, "
                                "and about 32% once it has spread to distant organs. ",
                                _cite("acs-survival"),
                            ]
                        ),
                        html.P(
                            [
                                html.Strong("Screening mammograms"),
                                " find many cancers before they can be felt. Recommendations "
                                "differ between countries: the USPSTF advises a mammogram "
                                "every two years from 40 to 74; the American Cancer Society "
                                "advises yearly mammograms from 45 (with the option from 40) "
                                "and every one or two years from 55; the NHS invites women "
                                "aged 50 to 71 every three years. ",
                                _cite("uspstf", "acs", "nhs-screening"),
                            ]
                        ),
                    ],
                    xs=12,
                    md=7,
                ),
                dbc.Col(
                    dbc.Card(
                        [
                            dbc.CardHeader(
                                html.H3(
                                    "What the evidence says about self-examination",
                                    className="h6 mb-0 fw-semibold",
                                )
                            ),
                            dbc.CardBody(
                                [
                                    html.P(
                                        [
                                            "Large trials that taught women a structured "
                                            "monthly self-exam did not lower deaths from "
                                            "breast cancer, and led to more biopsies of lumps "
                                            "that turned out to be harmless. ",
                                            _cite("cochrane", "shanghai"),
                                        ]
                                    ),
                                    html.P(
                                        [
                                            "For this reason the American Cancer Society does "
                                            "not recommend routine, structured self-exams for "
                                            "women at average risk, ",
                                            _cite("acs"),
                                            " and in 2009 the USPSTF recommended against "
                                            "teaching them. ",
                                            _cite("uspstf-2009"),
                                            " The American Cancer Society and the NHS "
                                            "encourage ",
                                            html.Strong("breast awareness"),
                                            " instead: knowing what is normal for you and "
                                            "reporting changes promptly. ",
                                            _cite("acs", "nhs"),
                                        ]
                                    ),
                                    html.P(
                                        "A self-exam is one way to become breast aware. It "
                                        "complements screening mammograms and clinical "
                                        "examinations and never replaces them: a normal "
                                        "self-exam is no reason to skip a screening "
                                        "appointment.",
                                        className="mb-0",
                                    ),
                                ]
                            ),
                        ],
                        color="info",
                        outline=True,
                        class_name="mb-3",
                    ),
                    xs=12,
                    md=5,
                ),
            ]
        ),
    )


def _doctor() -> html.Section:
    return _section(
        "learn-doctor",
        dbc.Row(
            [
                dbc.Col(
                    _card(
                        "Make an appointment soon",
                        [
                            html.Ul(
                                [
                                    html.Li(
                                        "any change from the list above that is new for you, "
                                        "or that is still there after your next period;"
                                    ),
                                    html.Li(
                                        "after menopause, any change at all: there is no "
                                        "cycle to wait for, so do not wait;"
                                    ),
                                    html.Li("pain in one spot that does not go away."),
                                ],
                                className="mb-0 ps-3",
                            ),
                        ],
                        color="primary",
                    ),
                    xs=12,
                    md=6,
                    class_name="mb-3",
                ),
                dbc.Col(
                    _card(
                        "Do not wait: see a doctor within days",
                        [
                            html.Ul(
                                [
                                    html.Li("bloody nipple discharge;"),
                                    html.Li(
                                        "skin that is dimpled, puckered or like orange peel, "
                                        "or a nipple that has newly turned inwards;"
                                    ),
                                    html.Li(
                                        "redness, warmth or swelling over a large part of the "
                                        "breast, especially if it appeared over days or weeks;"
                                    ),
                                    html.Li(
                                        "any new lump or thickening in the breast or armpit, "
                                        "even a painless one: do not wait to see whether it "
                                        "grows or goes (most lumps are not cancer, but only an "
                                        "examination can tell)."
                                    ),
                                ],
                                className="ps-3",
                            ),
                            html.P(
                                "A red, hot, painful breast with fever is usually an infection "
                                "and needs care the same day. If redness or swelling does not "
                                "settle with its treatment, go back: a rare, fast-growing "
                                "cancer (inflammatory breast cancer) can look like an "
                                "infection.",
                                className="mb-0 small",
                            ),
                        ],
                        color="danger",
                    ),
                    xs=12,
                    md=6,
                    class_name="mb-3",
                ),
            ]
        ),
        html.P(
            [
                "At the appointment a doctor will examine your breasts and, depending on your "
                "age and the finding, may arrange a mammogram, an ultrasound scan, or both, and "
                "sometimes a small needle biopsy. Having symptoms does not mean you have "
                "cancer, but finding it early makes it easier to treat. ",
                _cite("nhs"),
            ]
        ),
    )


def _students() -> html.Section:
    return _section(
        "learn-students",
        dbc.Accordion(
            [
                dbc.AccordionItem(
                    html.Ul(
                        [
                            html.Li(
                                [
                                    html.Strong("Breast self-examination (BSE):"),
                                    " a structured, regular exam done by the person "
                                    "themself, as described on this page.",
                                ]
                            ),
                            html.Li(
                                [
                                    html.Strong("Clinical breast examination (CBE):"),
                                    " the same inspection and palpation done by a trained "
                                    "health professional.",
                                ]
                            ),
                            html.Li(
                                [
                                    html.Strong("Breast awareness:"),
                                    " knowing one's normal and reporting changes, with or "
                                    "without a structured routine.",
                                ]
                            ),
                        ],
                        className="mb-0 ps-3",
                    ),
                    title="Terms",
                ),
                dbc.AccordionItem(
                    [
                        html.P(
                            [
                                "A Cochrane review of two large randomised trials (Shanghai "
                                "and Russia, together about 388,000 women) found no difference "
                                "in breast cancer deaths between women taught BSE and controls, "
                                "and almost twice as many biopsies with benign results in the "
                                "BSE groups. ",
                                _cite("cochrane", "shanghai"),
                            ]
                        ),
                        html.P(
                            [
                                "Screening guidelines weigh the same kind of trade-off, "
                                "fewer deaths against false positives and overdiagnosis, "
                                "which is why starting ages and intervals differ between "
                                "organisations and countries. ",
                                _cite("uspstf", "acs", "nhs-screening"),
                            ],
                            className="mb-0",
                        ),
                    ],
                    title="Evidence",
                ),
                dbc.AccordionItem(
                    html.Ul(
                        [
                            html.Li(
                                "Say early that most lumps are benign, and that checking is "
                                "still the right thing to do."
                            ),
                            html.Li(
                                "Present self-exam as a way to learn one's normal, not as a "
                                "test that can rule cancer out."
                            ),
                            html.Li(
                                "Remind patients of screening at the age and interval that "
                                "apply to them, and of the higher-risk pathway when relevant."
                            ),
                        ],
                        className="mb-0 ps-3",
                    ),
                    title="Talking with patients",
                ),
            ],
            start_collapsed=True,
            always_open=True,
            id="learn-students-accordion",
        ),
    )


def _references() -> html.Section:
    return _section(
        "learn-references",
        html.P(
            "The links open each organisation's own website. This page loads nothing from them.",
            className="text-body-secondary small",
        ),
        html.Ol(
            [
                html.Li(
                    [
                        html.Strong(ref.organisation),
                        ". ",
                        html.A(ref.title, href=ref.url, target="_blank", rel="noopener noreferrer"),
                        ".",
                    ],
                    id=_ref_anchor(ref.key),
                    className="mb-1",
                )
                for ref in REFERENCES
            ],
            className="learn-refs ps-3",
        ),
        html.P(
            "Diagrams drawn for SonoTrace as simple outlines. They show positions and "
            "techniques, not real anatomy.",
            className="text-body-secondary small",
        ),
        dbc.Alert(
            "This guide is for education only and is not medical advice. Always follow the "
            "advice of your own doctor or nurse.",
            color="secondary",
            class_name="small mb-0",
        ),
    )


def layout(**kwargs) -> dbc.Container:
    """The page layout.

    Parameters
    ----------
    **kwargs
        Query-string parameters Dash passes to every page; this page has none and
        ignores them.

    Returns
    -------
    dbc.Container
        Static content. Call it inside a running Dash app (or after creating one):
        the image URLs come from ``dash.get_asset_url``.
    """
    del kwargs  # the page takes no parameters; a stray query string must not break it
    return dbc.Container(
        [
            *_header(),
            dbc.Row(
                [
                    dbc.Col(_toc(), xs=12, lg=3, class_name="learn-toc-col"),
                    dbc.Col(
                        [
                            _when(),
                            _look(),
                            _feel(),
                            _positions(),
                            _changes(),
                            _risk(),
                            _early(),
                            _doctor(),
                            _students(),
                            _references(),
                        ],
                        xs=12,
                        lg=9,
                    ),
                ]
            ),
        ],
        fluid="lg",
        id="learn-page",
        class_name="learn-page px-0 px-sm-2",
    )
