from bot.harness import Harness


async def test_start_answers(harness: Harness) -> None:
    client = harness.phone("Aida")
    await client.send("/start")
    await client.wait_reply()
    print(client.screen())
    assert "опасности" in client.last().text
