"""trytond's HTTP server, as `trytond -c CONF -d DB` runs it, except that on SQLite it serves
one request at a time: Tryton's SQLite backend gives every thread the same connection, so
concurrent requests interleave their transactions (two projects created at once get the same
number). On PostgreSQL requests run in threads, as with trytond itself.

`python -m handoff.connectors.tryton.server -c trytond.conf -d DATABASE`"""

from __future__ import annotations

import trytond.commandline as commandline
import trytond.config as config


def main(argv: list[str] | None = None) -> None:
    options = commandline.get_parser_daemon().parse_args(argv)
    commandline.config_log(options)
    config.update_etc(options.configfile)
    # trytond reads its configuration when these are imported: only now
    from trytond.pool import Pool
    from trytond.wsgi import app
    from werkzeug.serving import run_simple

    Pool.start()
    for name in options.database_names:
        Pool(name).init()  # before listening: answering means ready
    host, port = config.split_netloc(config.get("web", "listen"))
    run_simple(host, port, app, threaded=not config.get("database", "uri").startswith("sqlite"))


if __name__ == "__main__":
    main()
