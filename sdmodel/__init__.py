"""sdscope's model: SD card, storage, bus, controller, driver, decoder. No Qt here."""
