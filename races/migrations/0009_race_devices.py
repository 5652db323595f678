from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("races", "0008_ghosts"),
    ]

    operations = [
        migrations.AddField(
            model_name="racealerts",
            name="devices",
            field=models.JSONField(
                default=dict,
                help_text="A tracked race's trackers as the relay last heard of them: athlete "
                "id -> source, fix_time, battery_pct, accuracy_m "
                "(races.relay.tracker_fixes.Device). For race control only, never in the "
                "public athlete form.",
            ),
        ),
    ]
