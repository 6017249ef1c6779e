"""Exact Online: the REST adapter (``client``) and the eExact XML writer (``exact_xml``)."""
