"""`sezim-bot demo`: the real bot against the built-in emulator, a throw-away database,
and a scripted crisis conversation, printing what the client and the specialist see."""

from __future__ import annotations

import asyncio
import logging
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from bot.dev.emulator import EmuMessage, Phone
from bot.dev.harness import Harness

WIDTH = 72

CLIENT_WORDS = {
    "ru": {
        "hello": "Здравствуйте",
        "question": "Он сказал, что заберёт детей, если я уйду. Что мне делать?",
        "caption": "Вот что он мне пишет",
        "thanks": "Спасибо, я завтра пойду в милицию.",
        "after_handover": "Здравствуйте. Мне правда очень тревожно.",
    },
    "ky": {
        "hello": "Саламатсызбы",
        "question": "Ал кетсең балдарды алып калам деди. Эмне кылсам болот?",
        "caption": "Мына ал мага эмне деп жазат",
        "thanks": "Рахмат, эртең милицияга барам.",
        "after_handover": "Саламатсызбы. Чындап эле аябай тынчсызданып жатам.",
    },
    "en": {
        "hello": "Hello",
        "question": "He said he will take the children if I leave. What can I do?",
        "caption": "This is what he writes to me",
        "thanks": "Thank you, I will go to the police tomorrow.",
        "after_handover": "Hello. I really am very anxious.",
    },
}

HANDOVER_NOTE = {
    "ru": "Юридическую часть обсудили; клиенту тревожно, плохо спится, нужна поддержка.",
    "ky": "Укуктук жагын талкууладык; кардар тынчсызданып, жакшы уктай албай жүрөт, колдоо керек.",
    "en": "We went through the legal side; the client is anxious, not sleeping: needs support.",
}

LAWYER_WORDS = {
    "ru": ("Здравствуйте, я юрист центра. Он не может просто так забрать детей: "
           "место жительства детей решает суд. Вы можете подать заявление в милицию и "
           "попросить временный охранный ордер. Его сообщения — доказательство: не храните "
           "их на общем телефоне, пришлите мне сюда или доверенному человеку."),
    "ky": ("Саламатсызбы, мен борбордун юристимин. Ал балдарды жөн эле алып кете албайт: "
           "балдардын кайда жашашын сот чечет. Милицияга арыз берип, убактылуу коргоо "
           "ордерин сурасаңыз болот. Анын билдирүүлөрү — далил: аларды жалпы телефондо "
           "сактабаңыз, мага ушул жерге же ишенген адамыңызга жөнөтүңүз."),
    "en": ("Hello, I am the center's lawyer. He cannot simply take the children: a court "
           "decides where they live. You can file a complaint with the police and ask for a "
           "temporary protection order. His messages are evidence: do not keep them on a shared "
           "phone; send them to me here or to someone you trust."),
}


@dataclass
class Transcript:
    """Prints what appeared (or changed) in each chat since the last look."""

    phones: list[tuple[str, Phone]]
    seen: dict[tuple[int, int], str] = field(default_factory=dict)

    def show(self, step: str) -> None:
        print(f"\n── {step} " + "─" * max(0, WIDTH - len(step) - 4))
        # Across the chats in the order they happened: the specialist's words before the
        # copy of them the client receives.
        appeared: list[tuple[float, int, str, list[str]]] = []
        deleted: dict[str, int] = {}
        for order, (title, phone) in enumerate(self.phones):
            for msg in phone.emu.chat(phone.id).messages:
                key = (phone.id, msg.message_id)
                shown = self._render(msg)
                before = self.seen.get(key)
                if before == shown:
                    continue
                self.seen[key] = shown
                if msg.deleted:
                    deleted[title] = deleted.get(title, 0) + (before is not None)
                    continue
                mark = "✎ " if before is not None else ""
                who = f"{title} writes" if not msg.from_bot else f"bot → {title}"
                appeared.append((msg.date, order, f"   [{who}] {mark}", shown.splitlines()))
        for _, _, head, lines in sorted(appeared, key=lambda item: (item[0], item[1])):
            print(head)
            for line in lines:
                print(f"      {line}")
        for title, count in deleted.items():
            if count:
                print(f"   [{title}] ✂ {count} message(s) deleted from the chat")

    @staticmethod
    def _render(msg: EmuMessage) -> str:
        if msg.deleted:
            return "(deleted)"
        lines = [msg.plain()]
        for row in (msg.reply_markup or {}).get("inline_keyboard", []):
            lines.append("  ".join(f"[ {b['text']} ]" for b in row))
        return "\n".join(lines)


async def scripted(language: str) -> None:
    with tempfile.TemporaryDirectory(prefix="sezim-demo-") as tmp:
        harness = Harness(f"sqlite+aiosqlite:///{Path(tmp) / 'demo.db'}")
        await harness.start()
        try:
            await _play(harness, language)
        finally:
            await harness.stop()


async def _play(h: Harness, language: str) -> None:
    assert h.app is not None
    texts = h.app.bot_data.texts
    settings = h.app.bot_data.settings

    def t(key: str, lang: str = language) -> str:
        return texts.t(lang, key)

    staff_lang = settings.organization.default_language
    lawyer = await h.add_staff("Aigul", ["lawyer"])
    psychologist = await h.add_staff("Nazira", ["psychologist"])
    print(f"sezim-bot demo: the real bot over HTTP against the loopback Telegram emulator "
          f"({h.emulator.base_url}), a throw-away SQLite database, two specialists on duty.")

    # Scene 1: at night, a woman in danger writes in Kyrgyz.
    night = h.phone("Woman at night", language_code="ky")
    show = Transcript([("woman", night), ("psychologist Nazira", psychologist)])
    print("\n══ Scene 1: in danger right now " + "═" * 40)

    async def step(title: str, action: object) -> None:
        await action  # type: ignore[misc]
        await h.settle()
        show.show(title)

    await step("She writes", night.send("/start"))
    await step("\"Yes, I'm in danger now\": the numbers come at once, nothing is asked",
               night.press(texts.t("ky", "btn_danger_yes")))
    await step("She accepts: an emergency case, the psychologist on duty gets the card",
               night.press(texts.t("ky", "btn_write_yes")))
    await step("Someone else may read her phone: messages will delete themselves",
               night.press(texts.t("ky", "btn_safe_shared")))
    await step("The psychologist takes the case", psychologist.press(t("btn_take", staff_lang)))
    await step("She chooses a code word, in case she has to leave quickly",
               night.press(texts.t("ky", "btn_code_word")))
    await step("She types it: it is kept only as an HMAC, and her message is deleted",
               night.send("Тулпар"))
    await step("She writes to the psychologist", night.send("Ал азыр үйдө жок, сүйлөшө алам."))
    await step("He comes back: quick exit. The psychologist is told at once",
               night.press(texts.t("ky", "btn_exit")))
    await step("The psychologist writes: not delivered, and she is told so",
               psychologist.send("Азыр коопсуз жердесизби?"))
    await step("He picks up her phone and writes: a new person's greeting, nothing relayed",
               night.send("Бул ким?"))
    await step("Later she is alone again and types her code word: back in the conversation",
               night.send("тулпар"))
    await step("The psychologist writes again",
               psychologist.send("Кайтып келгениңиз жакшы болду. Азыр коопсуз жердесизби?"))
    await step("Quick exit", night.press(texts.t("ky", "btn_exit")))

    # Scene 2: a woman asks for legal help.
    client = h.phone("Client", language_code=language)
    words = CLIENT_WORDS[language]
    show = Transcript([("client", client), ("lawyer Aigul", lawyer),
                       ("psychologist Nazira", psychologist)])
    print("\n══ Scene 2: asking for legal help " + "═" * 38)

    await step("She writes to the bot for the first time", client.send(words["hello"]))
    await step("She needs help, not in danger this minute", client.press(t("btn_danger_no")))
    await step("Nobody else reads her phone", client.press(t("btn_safe_private")))
    await step("For herself", client.press(t("for_me")))
    await step("Legal help", client.press(t("cat_legal")))
    bishkek = settings.region("bishkek")
    await step("Region", client.press(bishkek.name(language) if bishkek else t("btn_skip")))
    await step("The danger screen", client.press(t("btn_screen_start")))
    for number in range(1, 12):
        answer = t("btn_yes") if number in (2, 6) else t("btn_no")
        await client.press(answer)
        await h.settle()
    show.show("Eleven yes/no questions (yes to 2 and 6: screened in)")
    await step("Chat here now", client.press(t("contact_chat_now")))
    await step("She sends the request; the lawyer on duty gets a card",
               client.press(t("btn_send")))
    await step("The lawyer takes the case", lawyer.press(t("btn_take", staff_lang)))
    await step("She writes; the lawyer gets a copy, not her account",
               client.send(words["question"]))
    question = lawyer.bot_messages()[-1]
    await step("The lawyer answers by replying to it",
               lawyer.send(LAWYER_WORDS[language], reply_to=question))
    await step("She sends a photo of his messages", client.send_photo(words["caption"]))
    await step("The lawyer opens her quick replies and topics (/reply)", lawyer.send("/reply"))
    topic = texts.resource(staff_lang, "legal_rights").title
    await step("She sends the topic on the protection order: it arrives in the client's "
               "language", lawyer.press(topic))
    await step("She thanks the lawyer", client.send(words["thanks"]))
    await step("The lawyer hands the conversation over to the psychologist (/handover)",
               lawyer.send("/handover"))
    await step("…to Nazira", lawyer.press(texts.t(
        staff_lang, "handover_to", name="Nazira",
        roles=texts.t(staff_lang, "role_psychologist"))))
    offer = lawyer.bot_messages()[-1]
    await step("A note for the colleague, as a reply: copied to her, never stored",
               lawyer.send(HANDOVER_NOTE[staff_lang], reply_to=offer))
    await step("The psychologist takes it over; the client is told",
               psychologist.press(t("btn_take_over", staff_lang)))
    await step("The client writes: it reaches the psychologist now",
               client.send(words["after_handover"]))
    await step("The psychologist closes the case", psychologist.send("/close"))
    await step("Outcome: psychological consultation",
               psychologist.press(t("outcome_psych", staff_lang)))
    await step("She rates the help", client.press("⭐⭐⭐⭐⭐"))
    await step("Quick exit: the recent messages are deleted from her phone",
               client.press(t("btn_exit")))
    print("\nWhat her phone shows now:")
    print(client.screen() or "(nothing)")
    async with h.app.bot_data.sessions() as session:
        from sqlalchemy import func, select

        from models import Appeal
        appeals = await session.scalar(select(func.count()).select_from(Appeal))
    print(f"\nThe anonymous statistics kept {appeals} appeal record(s); "
          "no message text was stored.")


async def interactive(language: str) -> None:
    """A person plays the client; a scripted specialist takes the case and answers."""
    with tempfile.TemporaryDirectory(prefix="sezim-demo-") as tmp:
        h = Harness(f"sqlite+aiosqlite:///{Path(tmp) / 'demo.db'}")
        await h.start()
        try:
            assert h.app is not None
            texts = h.app.bot_data.texts
            staff_lang = h.app.bot_data.settings.organization.default_language
            lawyer = await h.add_staff("Aigul", ["lawyer", "psychologist"])
            client = h.phone("You", language_code=language)
            show = Transcript([("you", client)])
            print("You are the client. Type a message, a button's number (1, 2, ...), "
                  "a command such as /exit, or `quit`.")
            await client.send("/start")
            await h.settle()
            show.show("The bot")
            loop = asyncio.get_running_loop()
            while True:
                buttons = [b["text"] for m in client.bot_messages()[-1:] for b in m.buttons]
                for i, label in enumerate(buttons, 1):
                    print(f"   {i}. {label}")
                line = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
                if not line or line in ("quit", "q"):
                    break
                if line.isdigit() and 1 <= int(line) <= len(buttons):
                    await client.press(buttons[int(line) - 1])
                else:
                    await client.send(line)
                await h.settle()
                for card in lawyer.bot_messages():
                    if any(texts.t(staff_lang, "btn_take") in b["text"] for b in card.buttons):
                        await lawyer.press(texts.t(staff_lang, "btn_take"), message=card)
                        await h.settle()
                        await lawyer.send(LAWYER_WORDS[language])
                        await h.settle()
                show.show("The bot")
        finally:
            await h.stop()


def main(*, interactive: bool = False, language: str = "ru") -> int:
    logging.getLogger("bot").setLevel(logging.WARNING)
    logging.getLogger("handlers").setLevel(logging.WARNING)
    runner = globals()["interactive"] if interactive else scripted
    asyncio.run(runner(language))
    return 0
