"""Operations messages: outages, the daily digest, quota warnings."""
