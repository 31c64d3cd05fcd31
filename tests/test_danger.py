"""The danger-word check: phrases from the glossary that must and must not trigger."""

import pytest

from bot.domain.danger import Signal, check

MUST_TRIGGER = [
    # Russian
    "он сказал: убью", "Он меня убьёт", "убьет", "грозится убить", "хочет меня убить",
    "угрожал убийством", "прибьёт", "зарежу тебя", "бросился с ножом", "у него ружьё",
    "пистолет", "задушил", "душит меня", "схватил за горло", "не могу дышать",
    "он бьёт меня сейчас",
    "избил", "помогите", "спасите", "SOS", "вызовите полицию", "позвоните 102",
    "он ломает дверь", "ломится в дверь", "запер меня", "не выпускает из дома",
    "отобрал телефон", "истекаю кровью", "сломал руку", "облил бензином", "изнасиловал",
    "боюсь за жизнь", "напился и буянит", "угрожает забрать детей", "бьёт ребёнка",
    # Kyrgyz, with Kyrgyz letters and typed with Russian ones
    "өлтүрөм деди", "«өлтүрөм» деп коркутту", "уруп өлтүрүп коёт", "өлтүрүп салат",
    "мени уруп жатат", "Апа, мени күйөө балаңыз дагы уруп жатат", "сабап жатат", "сабады",
    "токмоктоду", "кол көтөрдү", "муунтту", "тумчуктурду", "тамагымдан алды",
    "дем ала албай жатам", "бычак алды", "курал менен коркутуп жатат", "мылтык бар",
    "жардам бериңиз!!", "Жардам!", "куткаргыла", "милиция чакыргыла",
    "алып кетиңчи", "эшикти бузуп жатат", "мени камап салды", "кан агып жатат", "зордуктады",
    "өмүрүмдөн коркуп жатам", "олтурот", "олтуром", "урду", "oltürom", "urup jatat",
    # English
    "he will kill me", "He said he'd kill me", "he's going to kill me", "he tried to choke me",
    "he is choking me", "I can't breathe", "he hit me", "he has a knife", "help me",
    "call the police", "he locked me in", "he won't let me leave", "I'm bleeding",
    "he is breaking the door", "I fear for my life",
    # Missed before (issue 19, from the Kyrgyz and Russian reviews)
    "Күйөөм мени күндө сабайт", "Мени уруп жатышат", "Бычакты алып кууп жатат",
    "Жаныңды алам деди", "102ге чалыңыз", "öltüröm dedi", "муж меня побил", "he hits me",
    "тез жардам керек", "жанымды алат",
    # The Kyrgyz native reader's review, §4: the rest of its list
    "уруп жүрөт", "уруп салат", "уруп койду", "Камап койду", "сыртка чыгарбай жатат",
    "телефонумду тартып алды", "Милицияга чалгыла", "102 ge chalgyla", "Жардам бергилечи",
    "Жардам.", "Эшикти тээп жатат", "коркуп атам", "үйдү өрттөйм деди", "kuyoom meni sabait",
    "janyndy alam dedi", "өмүрүм үчүн коркуп жатам", "жанымдан коркуп жатам",
]

MUST_NOT_TRIGGER = [
    "убить время", "убиваю время в очереди", "убить двух зайцев", "убил весь вечер на отчёт",
    "убойный фильм", "убийственно смешно", "прибить полку к стене", "бить тревогу",
    "жизнь бьёт ключом", "бить рекорд", "принять душ", "душевный разговор", "душа болит",
    "кровать", "кровля", "ножницы", "ножка стула", "ударение в слове",
    "помогите решить задачу по математике", "я убиваю боссов в игре",
    "сюжет про убийцу в сериале", "I'm dying to know", "this traffic is killing me",
    "you killed it", "I could kill for a coffee", "drop-dead gorgeous", "killer app",
    "Урматтуу адистер!", "урмат", "уруу", "уруктар", "сабак", "сабагым бар", "өлкө", "өлчөм",
    "өлөң", "күлүп өлдүм", "күлкүдөн өлүп калдым", "чарчап өлдүм", "ачкадан өлүп жатам",
    "ашканага бычак сатып алдым", "коркунучтуу кино көрдүм",
    "Здравствуйте, хочу узнать про консультацию юриста", "Саламатсызбы", "Hello",
    # Fired before, and must not (issue 19): a town, a dog, him arrested, a negation, a
    # plain request for help.
    "Токмокто жашайм", "ит үрдү", "милиция аны камап салды", "ал мени коркутпайт",
    "алимент боюнча жардам бериңизчи", "жардам керек", "жардам бериңиз", "жардам бериниз",
    "колу тийбейт", "олтурушта болдук", "олтурам", "өлгүдөй чарчадым",
    # not wanting to live with him is not a wish to die
    "я не хочу жить с ним", "не хочу больше жить с мужем", "I don't want to live with him",
    "он сводит счёты с соседом",
]

SELF_HARM = ["убью себя", "покончу с собой", "не хочу жить", "хочу умереть",
             "өзүмдү өлтүрөм", "өлгүм келет", "жашагым келбейт", "I want to kill myself",
             "I don't want to live", "өз жанымды кыям",
             # issue 19 item 8: spellings and kin
             "өз жанымды кыйам", "жанымды тием", "өлгүм келип жатат", "жашагым келбей жатат",
             "өзүмдү асып алам", "olgum kelet", "жить не хочу", "повешусь",
             "I want to hurt myself", "I'd be better off dead", "өз жанымды алам",
             "ozumdu olturom", "не хочу больше жить", "свести счёты с жизнью", "нет сил жить",
             "I don't want to be alive anymore", "life is not worth living"]


@pytest.mark.parametrize("text", MUST_TRIGGER)
def test_danger_phrases_trigger(text: str) -> None:
    assert check(text) is Signal.DANGER


@pytest.mark.parametrize("text", MUST_NOT_TRIGGER)
def test_look_alikes_do_not_trigger(text: str) -> None:
    assert check(text) is Signal.NONE


@pytest.mark.parametrize("text", SELF_HARM)
def test_self_harm_is_its_own_signal(text: str) -> None:
    assert check(text) is Signal.SELF_HARM


def test_case_and_letters_do_not_matter() -> None:
    assert check("ОН МЕНЯ УБЬЁТ") is Signal.DANGER
    assert check("ӨЛТҮРӨМ ДЕДИ") is Signal.DANGER
