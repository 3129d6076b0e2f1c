import { Type } from 'class-transformer';
import { IsIn, IsInt, IsOptional, IsString, Length, Matches, Max, Min } from 'class-validator';
import { ORDER_ID_PATTERN } from '#common';
import { EVENT_TYPES } from '#payments';

/** GET /api/v1/events (API.md §10). */
export class ListEventsDto {
  @IsOptional()
  @IsString()
  @Matches(ORDER_ID_PATTERN, { message: 'orderId must be 6 to 32 characters of letters, digits, _ and -' })
  orderId?: string;
  @IsOptional() @IsIn(EVENT_TYPES) type?: string;
  @IsOptional() @Type(() => Number) @IsInt() @Min(1) @Max(100) limit?: number;
  @IsOptional() @IsString() @Length(1, 64) cursor?: string;
}
