"""The journeys' logic, free of Telegram types: handlers call these and render the result."""
