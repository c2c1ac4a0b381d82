package io.github.sparkinfer.device;

import java.util.Objects;

/**
 * What a session is loaded for: the file version and the settings, which hold the device, so a
 * model gets one session per device.
 */
final class ModelKey {
  final ModelFileVersion version;
  final SessionSettings settings;

  ModelKey(ModelFileVersion version, SessionSettings settings) {
    this.version = version;
    this.settings = settings;
  }

  @Override
  public boolean equals(Object other) {
    return other instanceof ModelKey
        && ((ModelKey) other).version.equals(version)
        && ((ModelKey) other).settings.equals(settings);
  }

  @Override
  public int hashCode() {
    return Objects.hash(version, settings);
  }

  @Override
  public String toString() {
    return version + " [" + settings + "]";
  }
}
