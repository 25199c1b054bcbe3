"""The one exception type for bad input.

Every reader, validator and model builder raises :class:`InputError` with a one-line message
naming the file, column, city or equation at fault; the command-line scripts print it as
``error: <message>`` and exit with status 2, having written nothing.
"""


class InputError(ValueError):
    """Bad input from the user (file, column, city, formula...), explained in one line."""
