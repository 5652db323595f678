"""The relay's per-frame writes, lighter: see races.models.live (Position.race, LiveAthlete)."""

from django.db import migrations, models

LIVE_ATHLETE_FILLFACTOR = 40


def leave_room_for_hot_updates(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        table = schema_editor.quote_name("races_liveathlete")
        schema_editor.execute(f"ALTER TABLE {table} SET (fillfactor = {LIVE_ATHLETE_FILLFACTOR})")


def default_fill(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"ALTER TABLE {schema_editor.quote_name('races_liveathlete')} RESET (fillfactor)"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("races", "0009_race_devices"),
    ]

    operations = [
        migrations.AlterField(
            model_name="position",
            name="race",
            field=models.ForeignKey(
                db_index=False,
                on_delete=models.deletion.CASCADE,
                related_name="positions",
                to="races.race",
            ),
        ),
        migrations.RunPython(leave_room_for_hot_updates, default_fill),
    ]
