"""Exact Online: ``client``, ``rest`` (calls), ``tokens`` (sign-in), ``entries``, ``accounts``, XML."""
