"""``python -m exchange_sim``: serve the exchange emulators on 127.0.0.1 (see ``server``)."""

from exchange_sim.server import main

if __name__ == "__main__":
    main()
