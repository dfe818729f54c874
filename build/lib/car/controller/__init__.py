"""How a human drives the car: the web page (phone or desktop) and a gamepad."""
