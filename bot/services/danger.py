"""Danger-word check on a client's free text (Kyrgyz, Russian, English).

Text is normalised first (lower case; ё→е, ө→о, ү→у, ң→н, so Kyrgyz typed with Russian
letters matches too), then matched against stems with word boundaries. The stems are chosen
against the look-alikes of the glossary (§3.3): "убить время", "душевный", "кровать",
"ножницы", "сабак", "өлкө", "this traffic is killing me" must not trigger.
Self-harm is a separate signal with its own answer.
"""

from __future__ import annotations

import enum
import re


class Signal(enum.StrEnum):
    NONE = "none"
    DANGER = "danger"
    SELF_HARM = "self_harm"


_FOLD = str.maketrans({"ё": "е", "ө": "о", "ү": "у", "ң": "н", "’": "'", "`": "'",
                       # Kyrgyz typed in Latin letters, Turkish-style
                       "ö": "o", "ü": "u", "ñ": "n", "ı": "i"})

# Checked first: a threat against herself is answered differently from a threat by him.
_SELF_HARM = [
    # ru
    r"\bубью\s+себя\b", r"\bпокончу\s+с\s+собой\b", r"\bне\s+хочу\s+жить\b",
    r"\bхочу\s+умереть\b", r"\bпокончить\s+с\s+собой\b", r"\bсуицид\w*",
    # ky (folded; and typed in Latin letters)
    r"\bозумду\s+олтур\w*", r"\bолгум\s+кел(ет|ип\s+жатат|ип\s+турат)\b",
    r"\bжашагым\s+кел(бейт|бей\s+жатат|бей\s+калды)\b",
    r"\b(оз\s+)?жанымды\s+(кы(й|я)|тие|тий)\w*", r"\bоз\s+жанымды\s+алам\b",
    r"\bозумду\s+(асып|асам|ас\s+)\w*",
    r"\bозумо\s+кол\s+салам\b", r"\bolgum\s+kel\w*", r"\bjashagym\s+kelbe\w*",
    r"\bozumdu\s+olt[uo]r\w*",
    # ru, more
    r"\bпокончу\s+с\s+жизнью\b", r"\bповешусь\b", r"\bвскрою\s+вены\b",
    r"\bнаглотаюсь\s+таблеток\b", r"\bне\s+хочется\s+жить\b", r"\bжить\s+не\s+хочу\b",
    # en, more
    r"\bhurt\s+myself\b", r"\bno\s+reason\s+to\s+live\b", r"\bbetter\s+off\s+dead\b",
    # en
    r"\bkill\s+myself\b", r"\bsuicid\w*", r"\bwant\s+to\s+die\b", r"\bend\s+my\s+life\b",
    r"\bdon'?t\s+want\s+to\s+live\b",
]

_DANGER = [
    # --- Russian: threats to kill
    r"\bубь(ет|ют|ю|ешь)\b", r"\bубил\s+бы\b", r"\bубить\b(?!\s+(время|двух|вечер))",
    r"\bубива(ет|ют)\b", r"\bугрож\w*\s+убийств\w*", r"\bприбь(ет|ю|ют)\b",
    r"\bзареж(у|ет|ешь|ут)\b", r"\bзарезать\b", r"\bпореж(ет|у)\b",
    # weapons
    r"\bнож(ом|ем)?\b", r"\b(пистолет\w*|ружье\w*|оружи(е|ем)|топор(ом)?)\b",
    r"\bстреля(ет|ют)\b", r"\b(при|за)стрел(ю|ит|ят)\b",
    # strangulation
    r"\bдуш(ит|ил|ила|ат)\b", r"\bзадуш\w*", r"\bсхватил\w*\s+за\s+горло\b",
    r"\bсдавил\w*\s+(мне\s+)?шею\b", r"\bне\s+могу\s+дышать\b",
    # beating now
    r"\bбь(ет|ют)\b(?!\s+ключом)", r"\bизбива\w*", r"\bизбил\w*",
    r"\bпоби(л|ла|ли)\s+(меня|нас|ребенка|детей|сына|дочь)\b",
    r"\b(меня|нас)\s+(опять\s+|снова\s+)?поби(л|ла|ли)\b",
    # calls for help
    r"\bпомогите\b(?!\s+(решить|разобраться|понять|найти|выбрать|с\s+(задач|урок|домашн)))",
    r"\bспасите\b", r"\bsos\b", r"\bсрочно\s+(нужна\s+)?помощь\b",
    r"\bвызовите\s+(милицию|полицию|скорую)\b", r"\bпозвоните\s+102\b",
    # imminent, confinement, injury, fire, sexual violence
    r"\bлома(ет|ется)\s+(в\s+)?двер\w*", r"\bломится\b", r"\bвыбил\s+дверь\b",
    r"\bзапер(ла|ли)?\s+меня\b", r"\bвзаперти\b", r"\bне\s+выпуска(ет|ют)\b",
    r"\bотобрал\w*\s+(у\s+меня\s+)?телефон\b",
    r"\bкровь\b", r"\bкровью\b", r"\bистекаю\b", r"\bразбил\w*\s+(мне\s+)?голову\b",
    r"\bсломал\w*\s+(мне\s+)?(руку|нос|ребр\w*|челюсть)\b",
    r"\bоблил\w*\s+бензином\b", r"\bподжечь\b", r"\bсожгу\b", r"\bсожжет\b",
    r"\bизнасил\w*", r"\bнасилует\b", r"\bпринужда\w*\s+к\s+сексу\b",
    r"\bбоюсь\s+за\s+(свою\s+)?жизнь\b", r"\bнапился\s+и\s+(буянит|бьет|дерется)\b",
    r"\bугрожа\w*\s+(забрать|убить)\s+(детей|ребенка)\b",
    # --- Kyrgyz (folded: о for ө, у for ү, н for ң)
    r"\bолтур\w*", r"\bуруп\s+(жатат|жатышат|олтур\w*|салды|жиберди|атат)\b", r"\bурат\b",
    r"\bсаба(п|йт|шат|ды\w*)\b", r"\bтокмокто(ду|п|йт|шат)\b",
    r"\bкол\s+котор\w*", r"\bколу\s+тий\w*",
    r"\bмуунт\w*", r"\bтумчукт\w*", r"\bмойнумдан\s+кыс\w*", r"\bтамагымдан\s+алды\b",
    r"\bдем\s+ала\s+албай\b", r"\bбычак(ты)?\s+(менен|алды|алып|кармап)\b",
    r"\bбычагы\s+менен\b", r"\bкууп\s+(жатат|жатышат|келе\w*|журот)\b",
    # "I will take your life" (his words), "he will take my life"
    r"\bжан(ынды|ыбызды)\s+ал(ам|амын|ып\s+кой\w*)\b", r"\bжанымды\s+ал(ат|ып\s+кой\w*)\b",
    r"\bкурал\s+менен\b", r"\bмылтык\w*", r"\bтапанча\w*", r"\bбалта\s+(менен|алды|кармап)\b",
    r"\bкоркут(?!па)\w*", r"\bсоюп\s+сал\w*", r"\bорттоп\s+жибер\w*", r"\bкуйгузуп\s+жибер\w*",
    # A plain "жардам керек / бериңиз" is a request, not an emergency; a cry for help is.
    r"\bжардам\s+(бериниз|бергиле|кылыныз)\w*\s*!+", r"^\s*жардам\s*!+\s*$",
    r"\bтез\s+жардам\s+(керек|чакыр\w*)",
    r"\bкуткар(гыла|ыныз\w*|чы)\b", r"\bмилиция\s+чакыр\w*", r"\b102\s*-?(ге|га)?\s+чал\w*",
    r"\bалып\s+кет(инчи|киле)\b", r"\bэшикти\s+буз\w*",
    r"\bмени\s+(уйго\s+|бир\s+жерге\s+)?камап\s+сал\w*",
    r"\bуйдон\s+чыгарбай\w*", r"\bтелефонумду\s+алып\s+кой\w*", r"\bкан\s+агып\b",
    r"\bбашымды\s+жарды\b", r"\bзордукта\w*", r"\bомурумдон\s+корк\w*", r"\bкоркуп\s+жатам\b",
    # Kyrgyz in Latin letters
    r"\bolt[uü]r\w*", r"\burup\s+jatat\b", r"\bjardam\s+(beriniz|kerek)\b",
    # --- English
    r"\b(will|gonna|going\s+to|wants?\s+to|threaten\w*\s+to|tried\s+to|trying\s+to|try\s+to|"
    r"said\s+he'?d|he'?ll|he'?d)\s+(kill|murder|strangle|choke|stab|shoot|burn)\b",
    r"\bkill\s+(me|us|my\s+\w+|the\s+(kids|children|baby))\b",
    r"\b(choking|strangling|choked|strangled)\s+(me|her|my)\b", r"\bcan'?t\s+breathe\b",
    r"\b(hitting|beating|punching|kicking)\s+(me|us|my)\b",
    r"\bhe\s+(hit|beat|punched|kicked|hurt)\s+(me|my)\b",
    r"\bhe\s+(hits|beats|punches|kicks|hurts|chokes|strangles)\s+(me|us|my)\b",
    r"\b(gun|knife|weapon|axe)\b", r"\bhelp\s+me\b(?!\s+(with|to|understand|find|choose))",
    r"\bhelp\s*!+", r"\bcall\s+(the\s+)?police\b", r"\bcall\s+102\b",
    r"\blocked\s+me\s+in\b", r"\bwon'?t\s+let\s+me\s+(out|leave)\b", r"\btook\s+my\s+phone\b",
    r"\bbleeding\b", r"\brap(e|ed|ing)\b", r"\bbreaking\s+(down\s+)?the\s+door\b",
    r"\b(afraid|fear|scared)\s+for\s+my\s+life\b",
]

_SELF_HARM_RE = re.compile("|".join(f"(?:{p})" for p in _SELF_HARM))
_DANGER_RE = re.compile("|".join(f"(?:{p})" for p in _DANGER))

# Free text is bounded before it gets here; this is a second guard for the regex engine.
MAX_CHECKED = 4096


def normalise(text: str) -> str:
    return text[:MAX_CHECKED].lower().translate(_FOLD)


# Matched before folding: "урду" (hit him, her) and "үрдү" (a dog barked) fold alike.
_UNFOLDED_DANGER_RE = re.compile(r"\bурду\b")


def check(text: str) -> Signal:
    """Whether free text signals danger from someone, self-harm, or neither."""
    folded = normalise(text)
    if _SELF_HARM_RE.search(folded):
        return Signal.SELF_HARM
    if _DANGER_RE.search(folded) or _UNFOLDED_DANGER_RE.search(text[:MAX_CHECKED].lower()):
        return Signal.DANGER
    return Signal.NONE
