"""Danger-word check on a client's free text (Kyrgyz, Russian, English).

What it answers: whether a message says that someone is hurting or threatening her now
(the emergency numbers first), that she may hurt herself (its own answer), or neither.
It is measured, not guessed: `tests/data/danger_eval.toml` (labelled phrases in the three
languages, Kyrgyz also typed with Russian and Latin letters) and a held-out set never tuned
on; `tests/test_danger_eval.py` prints recall and false alarms and fails below the floors.
docs/content-notes.md has the figures and the comparison with a morphology library.

The text is looked at in three views:
- folded: lower case, ё→е, ө→о, ү→у, ң→н, so Kyrgyz typed with Russian letters matches;
- Kyrgyz typed in Latin letters, transliterated to that folded Cyrillic (sh→ш, j→ж, ...);
- Russian words as their dictionary forms (pymorphy3), so «избил», «изобьёт» and «избивает»
  meet one rule, and «не» before a verb is seen.
Self-harm is checked first: a threat against herself is answered differently.
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Callable, Iterable


class Signal(enum.StrEnum):
    NONE = "none"
    DANGER = "danger"
    SELF_HARM = "self_harm"


# Free text is bounded before it gets here; this is a second guard for the regex engine.
MAX_CHECKED = 4096

_FOLD = str.maketrans({"ё": "е", "ө": "о", "ү": "у", "ң": "н", "’": "'", "`": "'",
                       "ъ": "ь"})
# Common misspellings typed in a hurry, folded before the rules see them.
_TYPOS = [(re.compile(p), r) for p, r in [
    (r"\bпамаг", "помог"), (r"\bубю\b", "убью"), (r"\bумиреть\b", "умереть"),
    (r"\bнехочу\b", "не хочу"), (r"\bнехочется\b", "не хочется"),
    (r"\bwnat\b", "want"), (r"\bwont\b", "won't"), (r"\bdont\b", "don't"),
    (r"\bcant\b", "can't"), (r"\bim\b", "i'm"),
]]


def normalise(text: str) -> str:
    folded = text[:MAX_CHECKED].lower().translate(_FOLD)
    for pattern, replacement in _TYPOS:
        folded = pattern.sub(replacement, folded)
    return folded


# --- Kyrgyz typed in Latin letters, to folded Cyrillic -----------------------------------

_LATIN_PAIRS = [("sh", "ш"), ("ch", "ч"), ("zh", "ж"), ("kh", "х"), ("ts", "ц"),
                ("ng", "н"), ("yo", "йо"), ("yu", "йу"), ("ya", "я"), ("ye", "е")]
_LATIN_ONE = str.maketrans({
    "a": "а", "b": "б", "c": "ч", "d": "д", "e": "е", "f": "ф", "g": "г", "h": "х",
    "j": "ж", "k": "к", "l": "л", "m": "м", "n": "н", "o": "о", "p": "п", "q": "к",
    "r": "р", "s": "с", "t": "т", "u": "у", "v": "в", "w": "в", "x": "х", "z": "з",
    "ö": "ө", "ü": "ү", "ı": "ы", "ñ": "н", "ğ": "г", "ş": "ш", "ç": "ч",
})
_VOWELS = "aeiouöüıy"


def _latin_word(word: str) -> str:
    out = []
    i = 0
    while i < len(word):
        pair = word[i:i + 2]
        replaced = next((c for p, c in _LATIN_PAIRS if pair == p), None)
        if replaced is not None:
            out.append(replaced)
            i += 2
            continue
        ch = word[i]
        before = word[i - 1] if i else ""
        if ch == "y":
            out.append("й" if before and before in _VOWELS else "ы")
        elif ch == "i" and before and before in "aeouöü" and (
                i + 1 == len(word) or word[i + 1] not in _VOWELS):
            out.append("й")
        elif ch == "i":
            out.append("и")
        else:
            out.append(ch.translate(_LATIN_ONE))
        i += 1
    return "".join(out)


def latin_to_cyrillic(text: str) -> str:
    """Kyrgyz typed in Latin letters («meni urup jatat»), as folded Cyrillic («мени уруп
    жатат»); ü stays ү here, so «ürdü» (barked) and «urdu» (hit) stay apart."""
    return re.sub(r"[a-zöüıñğşç]+", lambda m: _latin_word(m.group()), text[:MAX_CHECKED].lower())


# --- Russian as dictionary forms ---------------------------------------------------------

@functools.cache
def _morph() -> object:
    # Loaded once: 25-30 MB that only reading Russian text needs, so the commands that read
    # none never load it; the running bot loads it as it starts (`prepare`).
    import pymorphy3

    return pymorphy3.MorphAnalyzer()


def prepare() -> None:
    """Load the Russian dictionary now. Loading it takes 50-70 ms of CPU here (more on a
    small server), and on the first message in Russian every chat would wait for it,
    someone in danger too (bench/load.py, 20 people: the first texts of a run took 65 ms
    instead of 20). Safe to call from a thread before anything checks a text."""
    _morph()


@functools.lru_cache(maxsize=65536)
def _lemma(word: str) -> str:
    analyzer = _morph()
    parses = analyzer.parse(word)  # type: ignore[attr-defined]
    if not parses:
        return word
    # A verb reading first, when there is one: «выпью» is "I will drink", not a bird.
    verbs = [p for p in parses if p.tag.POS in _VERB_TAGS and p.score >= 0.3]
    return str((verbs or parses)[0].normal_form).translate(_FOLD)


_VERB_TAGS = {"VERB", "INFN", "PRTF", "PRTS", "GRND"}


def lemmas(folded: str) -> str:
    """The Russian words of a folded text as their dictionary forms, space-separated."""
    words = re.findall(r"[а-я]+|[a-z']+|\d+", folded)
    return " " + " ".join(_lemma(w) if re.match("[а-я]", w) else w for w in words) + " "


def _compile(patterns: Iterable[str]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns))


PERSON = (r"(он|муж|мужик|отец|папа|отчим|брат|сын|бывший|свекор|свекровь|сожитель|парень|"
          r"они|зять|дядя|тесть)")
ME = r"(я|мы|ребенок|дочь|сын|дети|мама|мать|сестра)"

# --- self-harm ---------------------------------------------------------------------------

_SELF_HARM_LEMMA = _compile([
    # ru, on dictionary forms
    r" (убить|убивать) себя ", r" себя (убить|убивать) ", r" покончить (с )?(себя|собой|жизнь|всё|все) ",
    r" не хотеть жить (?!(с|со|вместе|там|здесь|у|в|под|дома|так|этот|он) )", r" жить не хотеть",
    r" хотеть (умереть|умирать|сдохнуть) ",
    r" хотеться (умереть|сдохнуть) ", r" не хотеться жить ", r" жить не хотеться",
    r" сдохнуть ", r" самоубийство ", r" суицид\w* ", r" повеситься ", r" вешаться ",
    r" вскрыть (себе )?вена ", r" (порезать|резать) (себе )?(вена|рука) ",
    r" (порезать|резать|ранить) себя ", r" себя (порезать|резать|ранить) ", r" (порезать|резать) себя (рука|вена) ",
    r" (выпить|наглотаться|проглотить|приготовить|напиться|пить) (весь |все |много |горсть )?(таблетка|снотворное|уксус|яд|отрава)",
    r" (выпить|наглотаться) (весь|все) ", r" отравиться ",
    r" (прыгнуть|спрыгнуть|броситься|кинуться|сброситься) (с|со|под|в|из) (\w+ )?(крыша|мост|окно|этаж|поезд|машина|балкон|скала|река|вода|электричка|мост) ",
    r" (крыша|мост|окно) и хотеть (прыгнуть|спрыгнуть) ",
    r" (лучше|хороший|хорошо) бы я (умереть|сдохнуть|не родиться) ", r" незачем жить ",
    r" без я (весь )?(быть )?(лучше|хороший|хорошо)", r" весь быть (лучше|хороший|хорошо) без я",
    r" (не )?видеть смысл (жить|жизнь)", r" смысл жить нет ", r" смысл жизнь нет ",
    r" уйти из жизнь ", r" прощальный (письмо|записка) ", r" выход кроме смерть ",
    r" уснуть и не проснуться ", r" не хотеть (больше |большой )?просыпаться ",
    r" причинить (себе|себя) (боль|вред) ", r" наложить на себя рука ", r" (выпить|наглотаться) (весь|все|всё) таблетка", r" надоесть жить ",
    r" сделать с (собой|себя) что", r" сделать что-нибудь с собой", r" покончить со весь ",
    r" покончить со все ", r" (устать|устала) жить ", r" не мочь (больше )?жить ",
    r" мысль о (самоубийство|смерть) ",
    # more of the common ways of saying it (from crisis-line practice, not from the sets)
    r" не хотеть (больше |большой )?жить (?!(с|со|вместе|там|здесь|у|в|под|дома|так|этот|он) )",
    r" свести (счет|счеты) с жизнь ",
    r" (выпрыгнуть|выброситься|сброситься) (из|с) (окно|балкон|крыша) ",
    r" нет сила жить ", r" зачем (я |мне )?жить ", r" (не|ни) зачем жить ", r" незачем жить ",
    r" не хотеть (больше |большой )?(существовать|просыпаться) ",
])

_SELF_HARM_TEXT = _compile([
    r"\bпокончу\s+со\s+вс(ем|ей)\b", r"\bпокончить\s+со\s+вс(ем|ей)\b",
    # ky (folded; Latin is transliterated into the same letters)
    r"\bозумду\s+(олтур|олтор|олт)\w*", r"\bол(гум|уп\s+калгым)\s+кел\w*",
    r"\bжашагым\s+кел(бе|бей)\w*", r"\bжашоонун\s+мааниси\s+жок\b",
    r"\b(оз\s+)?жаным(ды|а)?\s+(кы(й|я)|тие|тий|кол\s+(сал|тий|ти))\w*",
    r"\bоз\s+жанымды\s+ал(ам|айын|гым)\b",
    r"\b(тамырымды|билегимди|венамды)\s+(кы(й|я)|кес)\w*", r"\bколумду\s+кы(й|я)\w*",
    r"\bколумду\s+(?!бир\s+аз)(\w+\s+){0,3}кес(ип\s+(жатам|алдым|алам|салдым|коём|коем)|ем|тим)\b",
    r"\bозумду\s+(асып|асам|ас\s+|асай)\w*", r"\bасылып\s+(ол|ал|кал)\w*", r"\bасылам\b",
    r"\bозум(о|ду)\s+(кол\s+)?(сал|тий|ти|зыян|жабыр)\w*",
    r"(?<!кулкудон )(?<!кулуп )(?<!чарчап )\bолуп\s+кал(айын|гым|сам|мак)\w*",
    r"(?<!кулкудон )(?<!кулуп )(?<!чарчап )\bолойун\b", r"\bолом\s*$",
    r"\b(дары|дарыны|таблетка|таблетканы|уу)\s+(коп\s+)?ич(ип|ем|тим|сем)\w*",
    r"\bкоп\s+(дары|таблетка)\w*\s+ич\w*", r"\bуу\s+ичип\b",
    r"\b(копуро|терезе|чатыр|бийик)\w*\s+секир\w*", r"\b(дарыя|суу)\w*\s+секир\w*",
    r"\bжок\s+болсом\b", r"\bолум\s+жонундо\s+(гана\s+)?ойло\w*", r"\bолум\s+жонундо\b",
    r"\bмени\s+алып\s+кетсе\s+экен\b", r"\bэчак\s+ол\w*",
    r"\bолгум\s+келип\b",
    # en
    r"\b(kill|killing|hurt|hurting|harm|cut|cutting|hang|hanging)\s+myself\b",
    r"\bsuicid\w*", r"\b(want|wanna|wish)\s+(to\s+)?die\b", r"\bi\s+(want|wanna)\s+die\b",
    r"\bend(ing)?\s+(my|it)\s+(life|all)\b", r"\bend\s+it\s+(tonight|now|all|today)\b",
    r"\b(don't|do\s+not|dont)\s+(want|wanna)\s+(to\s+)?live\b(?!\s+(with|there|here|in|at|like|together|near|under))", r"\bno\s+reason\s+to\s+live\b",
    r"\bbetter\s+off\s+(dead|without\s+me)\b", r"\b(pills|overdose)\b",
    r"\b(cut|cutting|slit)\s+my\s+(wrists?|arms?|veins?)\b",
    r"\bjump\s+(off|from)\s+(the|a)\s+(bridge|roof|window|building)\b",
    r"\bon\s+the\s+roof\s+and\s+want\s+to\s+jump\b",
    r"\bcan't\s+go\s+on\s+(living|like\s+this)\b", r"\bwish\s+i\s+(was|were)\s+dead\b",
    r"\bsleep\s+and\s+never\s+wake\s+up\b", r"\b(don't|do\s+not)\s+want\s+to\s+wake\s+up\b",
    r"\bgoodbye\s+(letter|note)\b", r"\bway\s+out\s+(except|but)\s+death\b",
    r"\bdone\s+with\s+life\b", r"\bnobody\s+would\s+miss\s+me\b",
    r"\b(drank|drink|swallowed)\s+(bleach|poison)\b", r"\btake\s+my\s+own\s+life\b",
    r"\btired\s+of\s+living\b", r"\bmight\s+as\s+well\s+be\s+dead\b",
    r"\b(don't|do\s+not)\s+want\s+to\s+(be\s+alive|exist|be\s+here\s+anymore)\b",
    r"\btake\s+my\s+(own\s+)?life\b", r"\blife\s+(is\s+)?not\s+worth\s+living\b",
    r"\bsleep\s+forever\s+and\s+(not|never)\s+wake\b", r"\b(kill|end)\s+it\s+all\b",
    r"\bthrow\s+myself\s+(under|off|in)\b", r"\bno\s+point\s+(in\s+)?living\b",
])

# --- danger from someone -----------------------------------------------------------------

_NOT = r"(?<! не)(?<! никто не)"
_DANGER_LEMMA = _compile([
    # beating, kicking, strangling, now or again
    _NOT + r" (избить|избивать|побить|ударить|ударять|пинать|пнуть|колотить|отлупить|"
           r"бить|лупить|толкать|душить|задушить|придушить|покалечить|изуродовать) "
           r"(?!(яйцо|тревога|рекорд|ключ|баклуша|час|мяч|посуда|по мяч))",
    r" (таскать|тащить|схватить|хватать) (я )?за (волосы|волос|горло|шея) ",
    r" (сломать|разбить) (я |мне )?(рука|нога|нос|ребро|челюсть|голова) ",
    r" (ударить|бить|биться) (я )?(голова|головой) об ", r" головой об (стена|пол) ",
    # threats to kill, knives, guns, fire, acid
    r" (убить|прибить|зарезать|прирезать|пристрелить|застрелить|задушить|закопать|сжечь|"
    r"поджечь|изуродовать|искалечить) (?!(время|вечер|два|двух|босс|полка|гвоздь|весь вечер|"
    r"баран|овца|курица|корова|скот|козел|бык|мясо|барашек|ягненок))",
    PERSON + r" (я |нас )?(убивать|резать) ", r" (убивать|резать) (я|нас|ребенок|дети) ",
    r" (угрожать|грозить|грозиться) (я |мне |нам )?(убить|убийство|зарезать|нож|пистолет|"
    r"сжечь|облить|забрать|украсть|убийством|расправа|смерть)",
    PERSON + r" (я |мне |нам )?(угрожать|грозиться|запугивать) ",
    r" (преследовать|караулить) и (угрожать|бить) ",
    r" облить (я )?(бензин|кислота) ", r" (бензин|кислота) облить ",
    r" нож (к )?(горло|шея) ", r" (с )?нож (на )?(я|нас|он) (броситься|кинуться|бросаться)",
    r" (броситься|кинуться|бросаться|гоняться|угрожать|махать|прийти|ходить) (за )?(на )?(я )?(с )?нож ",
    r" у (он|него) (есть )?(нож|пистолет|ружье|оружие|топор) ", PERSON + r" (с|со) нож ",
    r" с нож (гнаться|караулить|ждать|стоять|прийти|за я|у подьезд|у дверь)",
    r" (караулить|ждать|поджидать|стоять)( \w+){0,3} с нож ",
    r" (схватить|взять|достать|хватать) нож ", r" (порезать|пырнуть|резать) (я|нас) ", r" (пырнуть|ударить) ножом ",
    r" (ружье|оружие|топор|обрез) ", r"(?<! клеевой)(?<! водяной)(?<! игрушечный) пистолет ",
    r" не мочь дышать ", r" задыхаться ",
    r" (стрелять|выстрелить) (в )?(я|нас|дом) ",
    # sexual violence
    r" (изнасиловать|насиловать|изнасилование) ", r" принуждать к (секс|интим)",
    r" (домогаться|приставать) (к )?(я|дочь|ребенок|дети)",
    # confinement, kidnapping, the phone taken
    _NOT + r" (запереть|запирать) ", r" взаперти ", r" не (выпускать|отпускать) ",
    r" (похитить|украсть) (я |дочь |меня )?(замуж|невеста)", r" (похитить|похищать) ",
    r" (насильно|силой) (увезти|забрать|держать|выдать)",
    r" (отобрать|забрать|отнять) (у я )?(мой )?(телефон|паспорт) ",
    r" (телефон|паспорт) (отобрать|забрать|отнять) ",
    # cries for help, calling the police
    r" (спасать|спасти) ", r" sos ", r" срочно (нужный |нужно )?(помощь|полиция|милиция) ",
    r" (нужный|нужно) (срочно )?помощь (полиция|милиция|срочно) ",
    r" вызвать (милиция|полиция|скорый) ", r" (позвонить|звонить) (в )?102 ",
    r" (ломать|ломиться|выбить|выломать) (в )?(дверь|окно) ", r" ломиться ",
    r" кровь (идти|течь|хлестать) ", r" истекать кровь ", r" весь в кровь ",
    r" бояться за (свой )?жизнь ", r" напиться и (буянить|бить|драться|бросаться) ",
    r" прятаться от (он|него|муж) ",
])

_DANGER_TEXT = _compile([
    r"\bубью\b", r"\bизобь(ет|ю|ют)\b",
    # «помогите» is a cry, unless help with something is asked for
    r"\bпомоги(те)?\b(?!\s+(пожалуйста\s+|мне\s+)?(с|со|решить|разобраться|понять|найти|"
    r"выбрать|составить|подсказать|заполнить|написать|оформить|узнать|подобрать|перевести|"
    r"подготовить|собрать)\b)",
    r"\bзвоните\s+(в\s+)?102\b", r"\bsos\b",
    # --- Kyrgyz (folded: о for ө, у for ү, н for ң); Latin is transliterated into these
    r"\b(олтур|олтор)(ом|от|уп\s+сал|уп\s+кой|ом\s+де|ош|усу|гонго|мок|уп\s+ко|оюн|омун)\w*",
    r"\bолтуруп\s+(сал|кет|кой)\w*", r"\bолторуп\s+(сал|кет|кой)\w*",
    r"\bурат\b", r"\bурушат\s+мени\b",
    r"\bура\s+(берет|баштады)\b",
    r"\bсаба(п|йт|шат|ды|шты|шып|шкан|ган|чу)\w*", r"\bсабап\b",
    r"\bтокмокто(ду|п|йт|шат|шты|ого|оп)\b", r"\bур-токмок\w*",
    r"\bтепкиле\w*", r"\b(курсагыма|мени|ичиме|башыма)\s+тепти\b", r"\bтээп\s+жибер\w*",
    r"\bкол\s+котор\w*", r"\bколу\s+тий(?!бе|бей)\w*",
    r"\bмуунт\w*", r"\bтумчукт\w*", r"\bмойнумдан\s+кыс\w*", r"\bтамагымдан\s+(алды|кыс)\w*",
    r"\bдем\s+ала\s+албай\b",
    r"\bбычак(ты|ын|ы)?\s+(менен\s+(коркут|кууп|саям|сай|сайды|урду|келди)|алды|алып|кармап|"
    r"сунду|такады|менен\s+мени)\w*",
    r"\bбычагы\s+менен\b", r"\bбычак\s+менен\s+(кут|тур|кел|тос)\w*",
    r"\bбычак\s+менен\s+(\w+\s+)?кесип\s+(салды|жиберди)\b", r"\bкууп\s+(жатат|жатышат|келе\w*|журот|чыкты|жиберди)\b",
    r"\bжан(ынды|ыбызды)\s+ал(ам|амын|ып\s+кой\w*)\b", r"\bжанымды\s+ал(ат|ып\s+кой\w*)\b",
    r"\bжок\s+кыл(ам|амын|ып\s+кой\w*)\b",
    r"\bкурал\s+менен\b", r"\bмылтык\w*", r"\bтапанча\w*", r"\bбалта\s+(менен|алды|кармап)\b",
    r"\bатып\s+(салам|салат|кой\w*|ташта\w*)\b",
    r"\bкоркут(?!па|уп\s+жаткан\s+жок|каны\s+жок)\w*", r"\bсоюп\s+сал\w*",
    r"\b(орт?|урт?)то(п|йм|йт|ом|дум|ду|шат)\w*", r"\bорттоп\s+жибер\w*",
    r"\bкуйгузуп\s+жибер\w*", r"\bот\s+коюп\b", r"\bот\s+кой(ом|от|ду)\b",
    r"\bбензин\s+(куюп|чачып|алып\s+кел)\w*",
    r"\bкогортуп\s+сал\w*", r"\bбетимди\s+(когорт|жар|ур)\w*",
    r"\b(кабырга|кол|бут|мурун|баш)\w*\s+сындыр\w*",
    r"\bэшик(ти)?\s+(буз|талкала|тээп|кулпула)\w*", r"\bталкала(п|йт|шат|ды)\w*\s+жатат\b",
    r"\bкулпулап\s+(кой|сал|мени)\w*", r"\bчыгарбай\s+(жатат|жатышат|койду|атат|турат)\b",
    r"\bчыгарбайт\b", r"\bчыга\s+албайм\b", r"\bуйдон\s+чыгарбай\w*",
    r"\bмени\s+(\w+(го|ка|ко|га)\s+)?камап\s+(сал|кой)\w*",
    r"\bала\s+кач(ып|ышты|ты|кан)\w*", r"\bзордук(та|тап|тады|ташты|тайт)\w*",
    # A plain "жардам керек / бериңиз" is a request, not an emergency; a cry for help is.
    r"\bжардам\s+(бериниз|бергиле|кылыныз|бериниздер)\w*\s*(отуном\s*)?!+",
    r"\bтез\s+жардам\s+(керек|бер|чакыр)\w*",
    r"\b(куткар|сактап\s+кал)(гыла|ыныз|ыныздар|чы)\w*",
    r"\bмилиция\s+чакыр\w*", r"\b102\s*-?(ге|га)?\s+чал\w*",
    r"\bалып\s+кет(инчи|киле)\b",
    r"\bтелефонум(ду)?\s+(алып\s+кой|тартып\s+ал|сындыр)\w*",
    r"\bпаспортум(ду)?\s+(алып\s+кой|тартып\s+ал)\w*",
    r"\bкан\s+агып\b", r"\bбашымды\s+жарды\b", r"\bомурумдон\s+корк\w*", r"\bомурум\s+учун\s+корк\w*", r"\bжанымдан\s+корк\w*",
    r"\bкоркуп\s+(жатам|атам)\b", r"\bмилицияга\s+чал(гыла|ыныз|ып\s+бер)\w*",
    r"(?<!аны )(?<!аларды )(?<!милиция )\bкамап\s+(кой|сал)(ду|ышты|ыптыр)\b",
    r"^\s*жардам\s*[.!]*\s*$", r"^\s*жардам\s+бергиле(чи)?\s*[.!]*\s*$",
    # --- English
    r"\b(will|gonna|going\s+to|wants?\s+to|threaten\w*\s+to|tried\s+to|trying\s+to|try\s+to|"
    r"said\s+he'?d|he'?ll|he'?d)\s+(kill|murder|strangle|choke|stab|shoot|burn|cut|beat)\b",
    r"\bkill\s+(me|us|my\s+\w+|the\s+(kids|children|baby)|you)\b",
    r"\b(choking|strangling|choked|strangled)\s+(me|her|my)\b", r"\bcan'?t\s+breathe\b",
    r"(?<!no one is )(?<!nobody is )(?<!not )\b(hitting|beating|punching|kicking|attacking|hurting)\s+(me|us|my|mom|mum|the\s+kids)\b",
    r"(?<!never )(?<!n't )(?<!not )\b(hit|beat|punched|kicked|hurt|attacked|stabbed|burned|burnt|slapped|pushed)\s+me"
    r"(?!\s+(at|in)\s+(chess|cards|tennis|football|the\s+game|a\s+game))\b",
    r"\b(hits|beats|punches|kicks|hurts|chokes|strangles|attacks|slaps)\s+"
    r"(me|us|my|the\s+kids|the\s+children|her|mom|mum)"
    r"(?!\s+(at|in)\s+(chess|cards|tennis|football))\b",
    r"\b(hit|beat)\s+me\s+with\b", r"\bbroke\s+my\s+(arm|nose|ribs?|jaw|leg)\b",
    r"\bslammed\s+my\s+head\b", r"\bdragged\s+me\b", r"\b(cut|slit)\s+my\s+throat\b",
    r"\b(gun|weapon|axe|pistol|rifle)\b",
    r"\b(knife)\b(?!\s+(set|block|sharpener))(?=.*\b(he|him|his|threat\w*|at\s+me)\b)",
    r"\b(he|him)\b.*\bknife\b",
    r"\bhelp\s+me\b(?!\s+(with|to|understand|find|choose|fill|get|write|apply|prepare|"
    r"figure|know|decide|learn|make|sort|plan|organi[sz]e|translate|please\s+with))",
    r"\b(please|someone|somebody)\s+help\b(?!\s+(me\s+)?(with|to|fill|find|understand))",
    r"\bhelp\s*!+", r"\b(i\s+need|we\s+need|need)\s+(help|the\s+police)\s+(now|urgently|please)\b",
    r"\bi\s+need\s+the\s+police\b", r"\burgent\s+help\b", r"\bsend\s+help\b", r"\bsave\s+me\b",
    r"\bcall\s+(the\s+)?police\b", r"\bcall\s+102\b",
    r"\blocked\s+me\s+(in|up)\b", r"\bkeep\s+me\s+locked\b", r"\blocked\s+up\b",
    r"\bwon'?t\s+let\s+me\s+(out|leave|go)\b", r"\btook\s+my\s+(phone|passport)\b",
    r"\bbleeding\b", r"\brap(e|ed|ing)\b", r"\bsexually\s+abus\w*", r"\bforces?\s+me\s+to\s+have\s+sex\b",
    r"\bbreaking\s+(down\s+)?the\s+door\b",
    r"\b(afraid|fear|scared)\s+for\s+my\s+life\b", r"\bkidnap\w*", r"\bstole\s+me\b",
    r"\bset\s+(the\s+house|me|the\s+flat|it)\s+on\s+fire\b", r"\bthrow\s+acid\b",
    r"\bwon'?t\s+live\s+to\s+see\b", r"\bhiding\s+(in\s+the\s+\w+\s+)?from\s+(him|them|my)\b",
    r"\bthreat(ening|ens)\s+(me|to|us)\b", r"\bthreatened\s+(me|to)\b",
])

# Matched before folding: «урду», «уруп» (hit) and «үрдү», «үрүп» (a dog barked) fold alike;
# typed with Russian letters, a dog in the message decides.
_UNFOLDED_DANGER_RE = re.compile(r"\b(урду|уруп)\b")
_DOG = re.compile(r"\b(ит|ити|иттер|иттин|кучук)\b")
# A game, a film or a book: «в игре меня убили» is not an emergency.
_FICTION = re.compile(r" (игра|сериал|фильм|кино|книга|мультик|game|film|movie|series|оюн|оюнда|кинодо) ")

# Told calmly of the past, with nothing now: not an emergency («5 жыл мурун урчу, азыр
# ажырашканбыз», «два года назад он меня бил, сейчас хочу развод»).
_PAST = re.compile(
    r"\b(\d+|бир|эки|уч|беш|он)\s+жыл\s+мурун\b|\bмурун\s+(уруп\s+)?ур(чу|ган)\b|"
    r"\bажырашканбыз\b|\bажырашып\s+кетк\w*|"
    r"\b(\d+|два|три|пять|много)\s+(года?|лет)\s+назад\b|\bраньше\s+(он\s+)?(меня\s+)?бил\b|"
    r"\bмы\s+развелись\b|\bуже\s+в\s+разводе\b|"
    r"\b(years|months)\s+ago\b|\bused\s+to\b|\bwe\s+(divorced|separated)\b")
_NOW = re.compile(r"\b(сейчас\s+опять|опять|снова|каждый\s+день|азыр\s+да|дагы|кайра|"
                  r"кундо|now\s+again|again|every\s+day|right\s+now)\b")


def check(text: str) -> Signal:
    """Whether free text signals danger from someone, self-harm, or neither."""
    return check_with(text, lemmas)


def words_as_typed(folded: str) -> str:
    """The words of a folded text as typed: `check_with` without morphology, to measure
    what the dictionary forms add (tests/test_danger_eval.py)."""
    return " " + " ".join(re.findall(r"[а-я]+|[a-z']+|\d+", folded)) + " "


def check_with(text: str, lemmatise: Callable[[str], str]) -> Signal:
    folded = normalise(text)
    latin = latin_to_cyrillic(folded) if re.search(r"[a-zöüı]", folded) else ""
    views = [folded, latin.translate(_FOLD)] if latin else [folded]
    lemma_line = lemmatise(folded) if re.search(r"[а-я]", folded) else ""
    if _SELF_HARM_LEMMA.search(lemma_line) or any(_SELF_HARM_TEXT.search(v) for v in views):
        return Signal.SELF_HARM
    if any(_PAST.search(v) for v in views) and not any(_NOW.search(v) for v in views):
        return Signal.NONE
    unfolded = [text[:MAX_CHECKED].lower()] + ([latin] if latin else [])
    if (_DANGER_LEMMA.search(lemma_line) or any(_DANGER_TEXT.search(v) for v in views)
            or (any(_UNFOLDED_DANGER_RE.search(v) for v in unfolded)
                and not any(_DOG.search(v) for v in views))):
        if _FICTION.search(lemma_line or f" {folded} "):
            return Signal.NONE
        return Signal.DANGER
    return Signal.NONE
